import HorgosGBT32960
import Testing

/// The decoder's side of `GBT32960StandardRangeTests`: which value a report names for the listener's
/// `horgos_gbt32960_values_out_of_range_total{field}` counter, and the views of the values that are
/// kept only as raw bytes.
extension GBT32960StandardRangeTests {
    static func field(_ name: String) -> GBT32960ValueField? { GBT32960ValueField.allCases.first { $0.name == name } }

    @Test func theFramesInRangeDecodeWithNothingOutOfRange() throws {
        for edition in GBT32960Edition.allCases {
            let frame = Self.frame(edition, vin: testVIN(1), time: Self.time(noon), patch: nil)
            #expect(try Self.report(frame) { $0.valuesOutOfRange.fields } == [], "\(edition)")
        }
    }

    @Test func aValuePastItsRangeIsNamedForTheCounterAndItsLastValueIsNot() throws {
        for c in Self.cases {
            let field = try #require(Self.field(c.field), "\(c.field) is a GBT32960ValueField name")
            let frame = Self.frame(
                c.edition, vin: testVIN(1), time: Self.time(noon), patch: (c.type, c.offset, c.size, c.past))
            #expect(try Self.report(frame) { $0.valuesOutOfRange.fields } == [field], "\(c)")
            let last = Self.frame(
                c.edition, vin: testVIN(1), time: Self.time(noon), patch: (c.type, c.offset, c.size, c.last))
            #expect(try Self.report(last) { $0.valuesOutOfRange.fields } == [], "\(c): the last value in range")
        }
        let coveredBy2016 = Set(Self.cases.filter { $0.edition == .edition2016 }.compactMap { Self.field($0.field) })
        #expect(coveredBy2016.union([.coordinateSystem]) == Set(GBT32960ValueField.allCases), "a case per field")
    }

    /// The markers are not available without being counted: they are the standard's own way to say so.
    @Test func theMarkersAreNotAvailableAndNotCounted() throws {
        for c in Self.cases where c.column != nil {
            let marker: UInt32 = c.size == 1 ? 0xFE : c.size == 2 ? 0xFFFF : 0xFFFF_FFFE
            let frame = Self.frame(
                c.edition, vin: testVIN(1), time: Self.time(noon), patch: (c.type, c.offset, c.size, marker))
            #expect(try Self.report(frame) { $0.valuesOutOfRange.fields } == [], "\(c)")
        }
    }

    /// Table 12's values Horgos keeps only as raw bytes (the fuel-cell probes' BLOB) or not at all (the
    /// hydrogen sensors' codes): their views read a value past the range as not available too.
    @Test func theFuelCellValuesWithoutAColumnAreNotAvailablePastTheirRange() throws {
        let patches: [(offset: Int, value: UInt32)] = [(8, 241), (12, 253), (15, 253), (18, 253)]
        for (offset, value) in patches {
            let frame = Self.frame(
                .edition2016, vin: testVIN(1), time: Self.time(noon), patch: (0x03, offset, 1, value))
            let read = try Self.report(frame) { r -> [Bool] in
                let f = try #require(r.fuelCell)
                return [
                    f.probeTemperature(0) == nil, f.hydrogenMaxTemperatureProbe == nil,
                    f.hydrogenConcentrationSensor == nil, f.hydrogenPressureSensor == nil,
                ]
            }
            let expected = [offset == 8, offset == 12, offset == 15, offset == 18]
            #expect(read == expected, "offset \(offset) = \(value)")
        }
    }
}
