import Testing

@testable import HorgosWire

@Suite struct WireSmokeTests {
    @Test func crc32cCheckValueOf123456789() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
    }

    @Test func telemetryFrameEncodesAndDecodesToTheSameRecord() throws {
        let vin = try #require(VIN("LSVAU2180N2183294"))
        let record = TelemetryRecord(
            timeOffsetMs: 1000, latitudeE7: 251_234_567, longitudeE7: 552_345_678,
            packCurrentDa: -1234, soc: 80, maxCellTemp: 35, minCellTemp: 30)
        var out: [UInt8] = []
        FrameEncoder.appendTelemetry(vin: vin, baseTimeMs: 1_700_000_000_000, records: [record], sequence: 1, to: &out)
        #expect(out.count == WireFormat.overhead + 28 + 40)
        try out.withUnsafeBytes { raw in
            let message = try #require(try FrameDecoder().decodeMessage(raw))
            guard case .telemetry(let batch) = message else { Issue.record("not telemetry"); return }
            #expect(batch.vin == vin)
            #expect(batch.count == 1)
            #expect(batch[0].record == record)
            #expect(batch[0].timestampMs == 1_700_000_001_000)
        }
    }
}
