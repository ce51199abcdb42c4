import HorgosWire
import Testing

/// The branch-free `isValid` must agree with the field-by-field rules of PROTOCOL.md 4.3 everywhere.
@Suite struct RecordValidationTests {
    /// The rules written out plainly, independent of the library.
    static func expectedValid(_ r: TelemetryRecord) -> Bool {
        func ok<T: Comparable>(_ v: T, _ range: ClosedRange<T>, na: T) -> Bool { v == na || range.contains(v) }
        return ok(r.latitudeE7, -900_000_000...900_000_000, na: Int32.max)
            && ok(r.longitudeE7, -1_800_000_000...1_800_000_000, na: Int32.max)
            && ok(r.speedDkmh, 0...5_000, na: 0xFFFF) && ok(r.headingCdeg, 0...35_999, na: 0xFFFF)
            && ok(r.packVoltageDv, 0...15_000, na: 0xFFFF) && ok(r.soc, 0...100, na: 0xFF)
            && ok(r.maxCellTemp, -40...125, na: -128) && ok(r.minCellTemp, -40...125, na: -128)
            && ok(r.maxAlarmLevel, 0...3, na: 0xFF) && ok(r.auxBatteryCv, 0...3_000, na: 0xFFFF)
            && ok(r.remainingRangeKm, 0...2_000, na: 0xFFFF)
    }

    /// Values at and around every boundary and sentinel, plus random ones.
    static func candidates<T: FixedWidthInteger>(_ edges: [T], random: inout SeededRandom) -> [T] {
        var values: [T] = [T.min, T.max, 0]
        for edge in edges { values += [edge &- 1, edge, edge &+ 1] }
        values += (0..<4).map { _ in T.random(in: T.min...T.max, using: &random) }
        return values
    }

    @Test func theFastCheckAgreesWithTheRulesOnBoundaryAndRandomValues() throws {
        var random = SeededRandom(seed: 2024)
        var checked = 0, invalid = 0
        let lat: [Int32] = Self.candidates([-900_000_000, 900_000_000, Int32.max], random: &random)
        let lon: [Int32] = Self.candidates([-1_800_000_000, 1_800_000_000, Int32.max], random: &random)
        let u16s: [UInt16] = Self.candidates([2_000, 3_000, 5_000, 15_000, 35_999, 0xFFFF], random: &random)
        let u8s: [UInt8] = Self.candidates([3, 100, 0xFF], random: &random)
        let temps: [Int8] = Self.candidates([-128, -40, 125], random: &random)
        for round in 0..<20_000 {
            var r = TelemetryRecord(
                latitudeE7: 0, longitudeE7: 0, odometerHm: 0, speedDkmh: 0, headingCdeg: 0, packVoltageDv: 0,
                packCurrentDa: 0, soc: 0, maxCellTemp: 0, minCellTemp: 0, maxAlarmLevel: 0, auxBatteryCv: 0,
                remainingRangeKm: 0)
            // Mostly one field off the valid path at a time, sometimes several.
            let changes = round % 10 == 0 ? 4 : 1
            for _ in 0..<changes {
                switch Int.random(in: 0..<11, using: &random) {
                case 0: r.latitudeE7 = lat.randomElement(using: &random)!
                case 1: r.longitudeE7 = lon.randomElement(using: &random)!
                case 2: r.speedDkmh = u16s.randomElement(using: &random)!
                case 3: r.headingCdeg = u16s.randomElement(using: &random)!
                case 4: r.packVoltageDv = u16s.randomElement(using: &random)!
                case 5: r.auxBatteryCv = u16s.randomElement(using: &random)!
                case 6: r.remainingRangeKm = u16s.randomElement(using: &random)!
                case 7: r.soc = u8s.randomElement(using: &random)!
                case 8: r.maxAlarmLevel = u8s.randomElement(using: &random)!
                case 9: r.maxCellTemp = temps.randomElement(using: &random)!
                default: r.minCellTemp = temps.randomElement(using: &random)!
                }
            }
            var bytes: [UInt8] = []
            FrameEncoder.appendRecord(r, to: &bytes)
            let expected = Self.expectedValid(r)
            bytes.withUnsafeBytes { raw in
                let view = TelemetryRecordView(bytes: raw, baseTimeMs: 1)
                #expect(view.isValid == expected, "\(r)")
                let threw = (try? view.validate(index: 0)) == nil
                #expect(threw == !expected, "\(r)")
            }
            checked += 1
            if !expected { invalid += 1 }
        }
        #expect(checked == 20_000)
        #expect(invalid > 5_000 && invalid < 15_000)  // both outcomes are well exercised
    }
}
