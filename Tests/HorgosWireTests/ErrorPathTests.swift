import HorgosWire
import Testing

/// The decoder's answers for incomplete and bad input, beyond what the vectors pin down.
@Suite struct ErrorPathTests {
    static let ping: [UInt8] = {
        var out: [UInt8] = []
        FrameEncoder.appendPing(0xABCD, sequence: 3, to: &out)
        return out
    }()

    static func scan(_ bytes: [UInt8]) throws -> FrameScan {
        try bytes.withUnsafeBytes { (raw) throws(FrameError) -> FrameScan in try FrameDecoder().scan(raw) }
    }

    @Test func everyPrefixOfAFrameAsksForExactlyTheMissingBytes() throws {
        let bytes = Self.ping
        try bytes.withUnsafeBytes { raw throws in
            for count in 0..<bytes.count {
                let prefix = UnsafeRawBufferPointer(rebasing: raw[..<count])
                let expected = count < 12 ? 12 - count : bytes.count - count
                #expect(try FrameDecoder().scan(prefix) == .needMore(expected), "prefix of \(count) bytes")
                #expect(try FrameDecoder().decode(prefix) == nil)
                #expect(throws: FrameError.truncatedFrame(have: count, need: count + expected)) {
                    try FrameDecoder().decodeComplete(prefix)
                }
            }
            let header = FrameHeader(type: .ping, sequence: 3, payloadLength: 8)
            #expect(try FrameDecoder().scan(raw) == .frame(header))
        }
    }

    @Test func anOversizeLengthIsRejectedWithOnlyTheTwelveHeaderBytes() throws {
        var header = Array(Self.ping.prefix(12))
        header[8] = 0x01
        header[9] = 0x00
        header[10] = 0x01  // payload_length 0x00010001 = 65,537
        try header.withUnsafeBytes { raw throws in
            #expect(raw.count == 12)
            #expect(throws: FrameError.frameTooLarge(length: 65_537, limit: 65_536)) { try FrameDecoder().scan(raw) }
            // With a larger configured limit the same header only asks for the rest of the frame.
            #expect(try FrameDecoder(maxPayload: 70_000).scan(raw) == .needMore(65_537 + 4))
        }
        header[10] = 0x00
        header[8] = 0x00
        header[9] = 0x00
        header[10] = 0x01  // 0x00010000 = 65,536: exactly the limit, accepted
        try header.withUnsafeBytes { raw throws in
            #expect(try FrameDecoder().scan(raw) == .needMore(65_536 + 4))
        }
    }

    @Test func badHeaderBytesAreRejectedAsSoonAsTheyArrive() throws {
        #expect(throws: FrameError.badMagic(0x4848)) { try Self.scan([0x48, 0x48]) }
        #expect(throws: FrameError.unsupportedVersion(9)) {
            try Self.scan([0x48, 0x47, 0x09])
        }
        #expect(throws: FrameError.unknownFrameType(0x12)) {
            try Self.scan([0x48, 0x47, 0x01, 0x12])
        }
        #expect(try Self.scan([0x48, 0x47, 0x01, 0x30]) == .needMore(8))
    }

    @Test func aBadChecksumReportsBothValues() throws {
        var bytes = Self.ping
        let good = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<20])) }
        bytes[20] ^= 0xFF
        let sent = good ^ 0xFF
        #expect(throws: FrameError.badChecksum(expected: sent, actual: good)) {
            try bytes.withUnsafeBytes { try FrameDecoder().decode($0) }
        }
    }

    @Test func everyFrameErrorMapsToItsOwnParserCode() {
        let errors: [FrameError] = [
            .badMagic(0), .unsupportedVersion(0), .unknownFrameType(0), .frameTooLarge(length: 0, limit: 0),
            .truncatedFrame(have: 0, need: 1), .badChecksum(expected: 0, actual: 1),
            .badPayloadLength(.ack, length: 0),
            .recordCountMismatch(count: 0, payloadLength: 0), .recordSizeTooSmall(0), .invalidVIN, .emptyBatch,
            .tooManyRecords(count: 0, limit: 0), .tooManyDTCs(0), .invalidFieldValue(field: "", record: 0),
            .invalidPayload(""),
        ]
        let codes = errors.map(\.code)
        #expect(Set(codes).count == errors.count)
        #expect(Set(codes) == Set(ErrorCode.allCases.filter { $0.rawValue < 0x0300 }))
        for code in ErrorCode.allCases { #expect(ErrorCode(name: code.name) == code) }
    }

    @Test func structureOnlyBatchViewsLeaveRecordValidationToTheCaller() throws {
        var record = TelemetryRecord()
        record.soc = 150
        var bytes: [UInt8] = []
        FrameEncoder.appendTelemetry(
            vin: VIN("LSVAU2180N2183294")!, baseTimeMs: 1, records: [TelemetryRecord(), record],
            sequence: 1, to: &bytes)
        try bytes.withUnsafeBytes { raw throws in
            let frame = try FrameDecoder().decodeComplete(raw)
            let batch = try TelemetryBatchView(structureOf: frame.payload)
            #expect(batch.count == 2)
            #expect(batch[1].soc == 150)
            #expect(throws: FrameError.invalidFieldValue(field: "soc", record: 1)) { try batch.validateRecords() }
            #expect(throws: FrameError.invalidFieldValue(field: "soc", record: 1)) {
                try TelemetryBatchView(payload: frame.payload)
            }
        }
    }
}
