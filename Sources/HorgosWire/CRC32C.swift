import CHorgosCRC32C

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF).
///
/// Check value: `checksum("123456789") == 0xE3069283`. Two implementations compute the same function:
/// portable slicing-by-8 in Swift, and the x86-64 SSE4.2 `crc32` instruction (three interleaved
/// streams, in the small C target `CHorgosCRC32C`). `checksum` and `update` pick the hardware one when
/// CPUID reports SSE4.2, decided once per process; `using:` forces one (tests, benchmarks).
public enum CRC32C {
    /// A way of computing CRC-32C; every implementation gives identical results.
    public enum Implementation: Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Slicing-by-8 in Swift: eight 256-entry tables, 8 bytes per step. Runs everywhere.
        case slicingBy8
        /// The SSE4.2 `crc32` instruction; available only where `isHardwareAvailable` is true.
        case hardware

        /// A short name for reports.
        public var description: String {
            switch self {
            case .slicingBy8: "slicing-by-8"
            case .hardware: "sse4.2"
            }
        }
    }

    /// Whether this CPU has the SSE4.2 `crc32` instruction (read from CPUID once).
    public static let isHardwareAvailable: Bool = horgos_crc32c_hardware_available() != 0

    /// The implementation `checksum(_:)` and `update(_:_:)` use on this machine.
    public static var preferred: Implementation { isHardwareAvailable ? .hardware : .slicingBy8 }

    /// The implementations this machine can run (for tests and benchmarks).
    public static var available: [Implementation] { isHardwareAvailable ? [.slicingBy8, .hardware] : [.slicingBy8] }

    /// Eight 256-entry tables for slicing-by-8, table t at `t * 256`; table 0 is the byte-wise table.
    ///
    /// A raw pointer rather than an Array: the hot loop then has no retain, no bounds check and no
    /// indirection through the array header. Allocated once and never freed.
    @usableFromInline
    nonisolated(unsafe) static let tables: UnsafePointer<UInt32> = {
        let tables = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for n in 0..<256 {
            var crc = UInt32(n)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0x82F6_3B78 & (0 &- (crc & 1))) }
            tables[n] = crc
        }
        for n in 0..<256 {
            var crc = tables[n]
            for t in 1..<8 {
                crc = tables[Int(crc & 0xFF)] ^ (crc >> 8)
                tables[t * 256 + n] = crc
            }
        }
        return UnsafePointer(tables)
    }()

    /// The CRC-32C of `bytes`, with the fastest implementation this machine has.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ~update(0xFFFF_FFFF, bytes)
    }

    /// The CRC-32C of `bytes` computed by `implementation` (which must be available).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, using implementation: Implementation) -> UInt32 {
        ~update(0xFFFF_FFFF, bytes, using: implementation)
    }

    /// Continues a running (not yet inverted) CRC over more bytes.
    @inlinable
    public static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        if isHardwareAvailable { return horgos_crc32c_hardware_update(start, bytes.baseAddress, bytes.count) }
        return slicingBy8(start, bytes)
    }

    /// Continues a running CRC with the given implementation (which must be available).
    @inlinable
    public static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer, using implementation: Implementation)
        -> UInt32
    {
        switch implementation {
        case .slicingBy8:
            return slicingBy8(start, bytes)
        case .hardware:
            precondition(isHardwareAvailable, "CRC32C.Implementation.hardware is not available on this CPU")
            return horgos_crc32c_hardware_update(start, bytes.baseAddress, bytes.count)
        }
    }

    /// `update(_:_:using:)` without the availability check, for callers that checked already.
    @inlinable @inline(__always)
    static func updateUnchecked(_ start: UInt32, _ bytes: UnsafeRawBufferPointer, using implementation: Implementation)
        -> UInt32
    {
        switch implementation {
        case .slicingBy8: return slicingBy8(start, bytes)
        case .hardware: return horgos_crc32c_hardware_update(start, bytes.baseAddress, bytes.count)
        }
    }

    /// The portable path: slicing-by-8 over a running CRC.
    @inlinable
    static func slicingBy8(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = start
        var index = 0
        let count = bytes.count
        let t = tables
        while index + 8 <= count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let low = UInt32(truncatingIfNeeded: word) ^ crc
            let high = UInt32(truncatingIfNeeded: word >> 32)
            crc =
                t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
            index &+= 8
        }
        while index < count {
            crc = t[Int((crc ^ UInt32(bytes.load(fromByteOffset: index, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
            index &+= 1
        }
        return crc
    }
}
