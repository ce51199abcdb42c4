import CHorgosCRC32C
import Foundation
import HorgosWire
import Testing

@Suite struct CRC32CTests {
    /// Bitwise reference of PROTOCOL.md 2.1, independent of both implementations.
    static func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0x82F6_3B78 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    static func crc(_ bytes: [UInt8], _ implementation: CRC32C.Implementation) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.checksum($0, using: implementation) }
    }

    @Test(arguments: CRC32C.available)
    func knownValuesOfRFC3720AndTheCheckString(_ implementation: CRC32C.Implementation) {
        #expect(Self.crc(Array("123456789".utf8), implementation) == 0xE306_9283)
        #expect(Self.crc([UInt8](repeating: 0, count: 32), implementation) == 0x8A91_36AA)
        #expect(Self.crc([UInt8](repeating: 0xFF, count: 32), implementation) == 0x62A8_AB43)
        #expect(Self.crc((0..<32).map { UInt8($0) }, implementation) == 0x46DD_794E)
        #expect(Self.crc((0..<32).reversed().map { UInt8($0) }, implementation) == 0x113F_DB5C)
        #expect(Self.crc([], implementation) == 0)
    }

    @Test func theHardwarePathIsChosenWhenTheCPUHasSSE42() {
        #expect(CRC32C.isHardwareAvailable == (horgos_crc32c_hardware_available() != 0))
        #expect(CRC32C.preferred == (CRC32C.isHardwareAvailable ? .hardware : .slicingBy8))
        #if arch(x86_64) && os(Linux)
            // Every x86-64 machine this project runs on has SSE4.2; /proc/cpuinfo says so independently.
            let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            #expect(CRC32C.isHardwareAvailable == flags.contains(" sse4_2"))
        #endif
    }

    @Test func everyImplementationAgreesWithTheBitwiseReferenceOnEveryLengthUpTo300() {
        var random = SeededRandom(seed: 0xC3C3)
        for length in 0...300 {
            let bytes = random.bytes(length)
            let expected = Self.reference(bytes)
            for implementation in CRC32C.available {
                #expect(Self.crc(bytes, implementation) == expected, "\(implementation), length \(length)")
            }
            // Unaligned starts: the same bytes one to seven bytes into a buffer.
            let shift = length % 8
            let padded = [UInt8](repeating: 0xAB, count: shift) + bytes
            for implementation in CRC32C.available {
                let crc = padded.withUnsafeBytes {
                    CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[shift...]), using: implementation)
                }
                #expect(crc == expected, "\(implementation), length \(length), offset \(shift)")
            }
        }
    }

    @Test func hardwareAndSlicingAgreeOnLargeInputsAcrossTheInterleavingBlockSizes() {
        var random = SeededRandom(seed: 77)
        // Around 3 x 128 and 3 x 1024 (the interleaved block rounds) and well past them.
        let lengths = [383, 384, 385, 767, 768, 3_071, 3_072, 3_073, 4_044, 65_524, 1 << 20, (1 << 20) + 13]
        for length in lengths {
            let bytes = random.bytes(length)
            let slicing = Self.crc(bytes, .slicingBy8)
            if length <= 4_044 { #expect(slicing == Self.reference(bytes), "length \(length)") }
            if CRC32C.isHardwareAvailable {
                #expect(Self.crc(bytes, .hardware) == slicing, "length \(length)")
                let single = bytes.withUnsafeBytes {
                    ~horgos_crc32c_hardware_update_single(0xFFFF_FFFF, $0.baseAddress, $0.count)
                }
                #expect(single == slicing, "single stream, length \(length)")
            }
        }
    }

    @Test(arguments: CRC32C.available)
    func updateContinuesAcrossAnySplit(_ implementation: CRC32C.Implementation) {
        var random = SeededRandom(seed: 9)
        let bytes = random.bytes(2_000)
        let whole = Self.crc(bytes, implementation)
        bytes.withUnsafeBytes { raw in
            for cut in stride(from: 0, through: 2_000, by: 37) {
                let first = CRC32C.update(
                    0xFFFF_FFFF, UnsafeRawBufferPointer(rebasing: raw[..<cut]), using: implementation)
                let both = CRC32C.update(first, UnsafeRawBufferPointer(rebasing: raw[cut...]), using: implementation)
                #expect(~both == whole, "cut at \(cut)")
            }
        }
    }
}
