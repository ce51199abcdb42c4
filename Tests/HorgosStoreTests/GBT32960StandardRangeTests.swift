import Foundation
import HorgosGBT32960
import HorgosWire
import Testing

@testable import HorgosStore

/// Every value of the realtime information blocks of both editions, stored with the first raw value
/// past the standard's valid range (有效值范围): it must be stored as missing (NULL), never clamped or
/// wrapped into a plausible number, and the decoder must name it for the out-of-range counter.
///
/// The frames are written here field by field from the tables of GB/T 32960.3-2016 (section 7.2.3,
/// Tables 9–17, and Annex B, Tables B.5–B.8) and, for the 2025 edition, from rtm_con's layouts
/// (Proto/GBT32960.md section 2.2) — not by Horgos's encoder.
@Suite(.serialized) struct GBT32960StandardRangeTests {
    static let beijing = GBT32960Format.beijingUTCOffsetSeconds

    static func word(_ v: UInt32) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func dword(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    /// The blocks of a frame, by their wire type byte, bodies in range.
    static func blocks(_ edition: GBT32960Edition) -> [(type: UInt8, body: [UInt8])] {
        if edition == .edition2016 {
            return [
                // Table 9: state 1, charging 3, mode 1, speed 468, odometer 72120, voltage 6397,
                // current 7517, SOC 26, DC-DC 1, gear 0x23, insulation 4444, accelerator 10, brake 6.
                (
                    0x01,
                    [1, 3, 1] + word(468) + dword(72_120) + word(6_397) + word(7_517) + [26, 1, 0x23]
                        + word(4_444) + [10, 6]
                ),
                // Tables 10, 11: 1 motor: number 1, state 2, controller 77, speed 22151, torque 14150,
                // temperature 108, voltage 6398, current 7997.
                (0x02, [1, 1, 2, 77] + word(22_151) + word(14_150) + [108] + word(6_398) + word(7_997)),
                // Table 12: voltage 10000, current 12000, consumption 45000, 2 probes 120 121,
                // hydrogen 1250 (probe 10), 35000 mg/kg (sensor 11), 500 (sensor 12), DC-DC 1.
                (
                    0x03,
                    word(10_000) + word(12_000) + word(45_000) + word(2) + [120, 121] + word(1_250) + [10]
                        + word(35_000) + [11] + word(500) + [12, 1]
                ),
                // Table 13: state 1, crankshaft 2000, fuel rate 200.
                (0x04, [1] + word(2_000) + word(200)),
                // Tables 14, 15: valid fix, north, east; longitude, latitude.
                (0x05, [0] + dword(108_284_593) + dword(30_695_328)),
                // Table 16: max cell 6/1 3348 mV, min cell 3/2 3286 mV, max temp 4/48 69, min temp 8/8 67.
                (0x06, [6, 1] + word(3_348) + [3, 2] + word(3_286) + [4, 48, 69, 8, 8, 67]),
                // Table 17: level 2, flags bit 13, four empty fault lists.
                (0x07, [2] + dword(0x2000) + [0, 0, 0, 0]),
                // Annex B (B.5, B.6): 1 subsystem: number 1, 6403, 7767, total 4, first 1, 4 cells.
                (
                    0x08,
                    [1, 1] + word(6_403) + word(7_767) + word(4) + word(1) + [4] + word(3_330) + word(3_348)
                        + word(3_286) + word(3_300)
                ),
                // Annex B (B.7, B.8): 1 subsystem: number 1, 4 probes 67 68 69 67.
                (0x09, [1, 1] + word(4) + [67, 68, 69, 67]),
            ]
        }
        return [
            // 2025 0x01: as Table 9 without the pedals; current raw − 30000.
            (0x01, [1, 3, 1] + word(468) + dword(72_120) + word(6_397) + word(27_517) + [26, 1, 0x23] + word(4_444)),
            // 2025 0x02: 1 motor of 10 bytes: number, state, controller, speed (− 32000), torque DWORD
            // (− 200000), temperature.
            (0x02, [1, 1, 2, 77] + word(34_151) + dword(205_850) + [108]),
            // 2025 0x04: crankshaft only.
            (0x04, word(2_000)),
            // 2025 0x05: status, coordinate system 1 (WGS-84), longitude, latitude.
            (0x05, [0, 1] + dword(108_284_593) + dword(30_695_328)),
            // 2025 0x06 alarms: level 2, flags, four empty lists, no levelled alarm.
            (0x06, [2] + dword(0x2000) + [0, 0, 0, 0, 0]),
            // 2025 0x07 cells: 1 subsystem: number, voltage, current (− 30000), count WORD, cells.
            (
                0x07,
                [1, 1] + word(6_403) + word(27_767) + word(4) + word(3_330) + word(3_348) + word(3_286) + word(3_300)
            ),
            // 2025 0x08 probes: as 2016 0x09.
            (0x08, [1, 1] + word(4) + [67, 68, 69, 67]),
        ]
    }

    /// One value of one block: where it is, the last raw value in its range, the first past it, and
    /// the stored column that holds the reading (nil: only the raw bytes are kept, in a BLOB).
    struct Case: CustomStringConvertible {
        /// The name the out-of-range counter uses (`GBT32960ValueField.name`).
        var field: String
        var edition: GBT32960Edition
        var type: UInt8
        var offset: Int
        var size: Int
        var last: UInt32
        var past: UInt32
        /// `table.column`, and what it holds when the value is `last` and when it is `past`.
        var column: String?
        var atLast = ""
        var atPast = "NULL"

        var description: String { "\(edition == .edition2016 ? "2016" : "2025") \(field) = \(past)" }
    }

    static let cases: [Case] = {
        let e16 = GBT32960Edition.edition2016, e25 = GBT32960Edition.edition2025
        var all: [Case] = [
            // Table 9, whole vehicle.
            Case(
                field: "vehicle_state", edition: e16, type: 1, offset: 0, size: 1, last: 3, past: 4,
                column: "gbt_samples.vehicle_state", atLast: "3"),
            Case(
                field: "charging_state", edition: e16, type: 1, offset: 1, size: 1, last: 4, past: 5,
                column: "gbt_samples.charging_state", atLast: "4"),
            Case(
                field: "running_mode", edition: e16, type: 1, offset: 2, size: 1, last: 3, past: 4,
                column: "gbt_samples.running_mode", atLast: "3"),
            Case(
                field: "speed", edition: e16, type: 1, offset: 3, size: 2, last: 2_200, past: 2_201,
                column: "telemetry.speed_dkmh", atLast: "2200"),
            Case(
                field: "odometer", edition: e16, type: 1, offset: 5, size: 4, last: 9_999_999, past: 10_000_000,
                column: "telemetry.odometer_hm", atLast: "9999999"),
            Case(
                field: "total_voltage", edition: e16, type: 1, offset: 9, size: 2, last: 10_000, past: 10_001,
                column: "telemetry.pack_voltage_dv", atLast: "10000"),
            Case(
                field: "total_current", edition: e16, type: 1, offset: 11, size: 2, last: 20_000, past: 20_001,
                column: "telemetry.pack_current_da", atLast: "10000"),
            Case(
                field: "soc", edition: e16, type: 1, offset: 13, size: 1, last: 100, past: 101,
                column: "telemetry.soc", atLast: "100"),
            Case(
                field: "dcdc_state", edition: e16, type: 1, offset: 14, size: 1, last: 2, past: 3,
                column: "gbt_samples.dcdc_state", atLast: "2"),
            Case(
                field: "insulation", edition: e16, type: 1, offset: 16, size: 2, last: 60_000, past: 60_001,
                column: "gbt_samples.insulation_kohm", atLast: "60000"),
            Case(
                field: "accelerator_pedal", edition: e16, type: 1, offset: 18, size: 1, last: 100, past: 101,
                column: "gbt_samples.accelerator_pct", atLast: "100"),
            // 0x65 (101) is "brake on, no travel value": the first raw value past the range is 102.
            Case(
                field: "brake_pedal", edition: e16, type: 1, offset: 19, size: 1, last: 100, past: 102,
                column: "gbt_samples.brake_pct", atLast: "100"),
            // Tables 10, 11, drive motor (after the count byte).
            Case(
                field: "motor_state", edition: e16, type: 2, offset: 2, size: 1, last: 4, past: 5,
                column: "gbt_motors.state", atLast: "4"),
            Case(
                field: "motor_controller_temperature", edition: e16, type: 2, offset: 3, size: 1, last: 250, past: 251,
                column: "gbt_motors.controller_temp_c", atLast: "210"),
            Case(
                field: "motor_speed", edition: e16, type: 2, offset: 4, size: 2, last: 65_531, past: 65_532,
                column: "gbt_motors.speed_rpm", atLast: "45531"),
            Case(
                field: "motor_torque", edition: e16, type: 2, offset: 6, size: 2, last: 65_531, past: 65_532,
                column: "gbt_motors.torque_dnm", atLast: "45531"),
            Case(
                field: "motor_temperature", edition: e16, type: 2, offset: 8, size: 1, last: 250, past: 251,
                column: "gbt_motors.temp_c", atLast: "210"),
            Case(
                field: "motor_voltage", edition: e16, type: 2, offset: 9, size: 2, last: 60_000, past: 60_001,
                column: "gbt_motors.voltage_dv", atLast: "60000"),
            Case(
                field: "motor_current", edition: e16, type: 2, offset: 11, size: 2, last: 20_000, past: 20_001,
                column: "gbt_motors.current_da", atLast: "10000"),
            // Table 12, fuel cell (2 probes: the hydrogen fields start at 10).
            Case(
                field: "fuel_cell_voltage", edition: e16, type: 3, offset: 0, size: 2, last: 20_000, past: 20_001,
                column: "gbt_samples.fuel_cell_voltage_dv", atLast: "20000"),
            Case(
                field: "fuel_cell_current", edition: e16, type: 3, offset: 2, size: 2, last: 20_000, past: 20_001,
                column: "gbt_samples.fuel_cell_current_da", atLast: "20000"),
            Case(
                field: "fuel_consumption", edition: e16, type: 3, offset: 4, size: 2, last: 60_000, past: 60_001,
                column: "gbt_samples.fuel_consumption", atLast: "60000"),
            Case(field: "fuel_cell_probe_temperature", edition: e16, type: 3, offset: 8, size: 1, last: 240, past: 241),
            Case(
                field: "hydrogen_max_temperature", edition: e16, type: 3, offset: 10, size: 2, last: 2_400, past: 2_401,
                column: "gbt_samples.h2_max_temp_dc", atLast: "2000"),
            Case(field: "hydrogen_temperature_probe", edition: e16, type: 3, offset: 12, size: 1, last: 252, past: 253),
            Case(
                field: "hydrogen_max_concentration", edition: e16, type: 3, offset: 13, size: 2, last: 60_000,
                past: 60_001, column: "gbt_samples.h2_max_concentration", atLast: "60000"),
            Case(
                field: "hydrogen_concentration_sensor", edition: e16, type: 3, offset: 15, size: 1, last: 252, past: 253
            ),
            Case(
                field: "hydrogen_max_pressure", edition: e16, type: 3, offset: 16, size: 2, last: 1_000, past: 1_001,
                column: "gbt_samples.h2_max_pressure", atLast: "1000"),
            Case(field: "hydrogen_pressure_sensor", edition: e16, type: 3, offset: 18, size: 1, last: 252, past: 253),
            Case(
                field: "fuel_cell_dcdc_state", edition: e16, type: 3, offset: 19, size: 1, last: 2, past: 3,
                column: "gbt_samples.fuel_cell_dcdc_state", atLast: "2"),
            // Table 13, engine.
            Case(
                field: "engine_state", edition: e16, type: 4, offset: 0, size: 1, last: 2, past: 3,
                column: "gbt_samples.engine_state", atLast: "2"),
            Case(
                field: "crankshaft_speed", edition: e16, type: 4, offset: 1, size: 2, last: 60_000, past: 60_001,
                column: "gbt_samples.crankshaft_rpm", atLast: "60000"),
            Case(
                field: "fuel_rate", edition: e16, type: 4, offset: 3, size: 2, last: 60_000, past: 60_001,
                column: "gbt_samples.fuel_rate", atLast: "60000"),
            // Tables 14, 15, position.
            Case(
                field: "longitude", edition: e16, type: 5, offset: 1, size: 4, last: 180_000_000, past: 180_000_001,
                column: "telemetry.longitude_e7", atLast: "1800000000"),
            Case(
                field: "latitude", edition: e16, type: 5, offset: 5, size: 4, last: 90_000_000, past: 90_000_001,
                column: "telemetry.latitude_e7", atLast: "900000000"),
            // Table 16, extreme values.
            Case(
                field: "max_voltage_subsystem", edition: e16, type: 6, offset: 0, size: 1, last: 250, past: 251,
                column: "gbt_samples.max_cell_subsystem", atLast: "250"),
            Case(
                field: "max_voltage_cell", edition: e16, type: 6, offset: 1, size: 1, last: 250, past: 251,
                column: "gbt_samples.max_cell_number", atLast: "250"),
            Case(
                field: "max_cell_voltage", edition: e16, type: 6, offset: 2, size: 2, last: 15_000, past: 15_001,
                column: "gbt_samples.max_cell_mv", atLast: "15000"),
            Case(
                field: "min_voltage_subsystem", edition: e16, type: 6, offset: 4, size: 1, last: 250, past: 251,
                column: "gbt_samples.min_cell_subsystem", atLast: "250"),
            Case(
                field: "min_voltage_cell", edition: e16, type: 6, offset: 5, size: 1, last: 250, past: 251,
                column: "gbt_samples.min_cell_number", atLast: "250"),
            Case(
                field: "min_cell_voltage", edition: e16, type: 6, offset: 6, size: 2, last: 15_000, past: 15_001,
                column: "gbt_samples.min_cell_mv", atLast: "15000"),
            Case(
                field: "max_temperature_subsystem", edition: e16, type: 6, offset: 8, size: 1, last: 250, past: 251,
                column: "gbt_samples.max_temp_subsystem", atLast: "250"),
            Case(
                field: "max_temperature_probe", edition: e16, type: 6, offset: 9, size: 1, last: 250, past: 251,
                column: "gbt_samples.max_temp_probe", atLast: "250"),
            Case(
                field: "max_temperature", edition: e16, type: 6, offset: 10, size: 1, last: 250, past: 251,
                column: "gbt_samples.max_temp_c", atLast: "210"),
            Case(
                field: "min_temperature_subsystem", edition: e16, type: 6, offset: 11, size: 1, last: 250, past: 251,
                column: "gbt_samples.min_temp_subsystem", atLast: "250"),
            Case(
                field: "min_temperature_probe", edition: e16, type: 6, offset: 12, size: 1, last: 250, past: 251,
                column: "gbt_samples.min_temp_probe", atLast: "250"),
            Case(
                field: "min_temperature", edition: e16, type: 6, offset: 13, size: 1, last: 250, past: 251,
                column: "gbt_samples.min_temp_c", atLast: "210"),
            // Table 17, alarms: the native level (the byte as sent stays in alarm_level_raw).
            Case(
                field: "alarm_level", edition: e16, type: 7, offset: 0, size: 1, last: 3, past: 4,
                column: "telemetry.max_alarm_level", atLast: "3"),
            // Annex B, cell voltages (after the subsystem count and number) and probe temperatures.
            Case(
                field: "subsystem_voltage", edition: e16, type: 8, offset: 2, size: 2, last: 10_000, past: 10_001,
                column: "gbt_cell_voltages.voltage_dv", atLast: "10000"),
            Case(
                field: "subsystem_current", edition: e16, type: 8, offset: 4, size: 2, last: 20_000, past: 20_001,
                column: "gbt_cell_voltages.current_da", atLast: "10000"),
            // The last cell (offset 17): the stored maximum leaves a cell past the range out.
            Case(
                field: "cell_voltage", edition: e16, type: 8, offset: 17, size: 2, last: 60_000, past: 60_001,
                column: "gbt_cell_voltages.max_mv", atLast: "60000", atPast: "3348"),
            Case(
                field: "probe_temperature", edition: e16, type: 9, offset: 6, size: 1, last: 250, past: 251,
                column: "gbt_probe_temperatures.max_c", atLast: "210", atPast: "28"),
        ]
        // The 2025 edition: the fields its layouts have, at their 2025 offsets and ranges.
        all += [
            Case(
                field: "vehicle_state", edition: e25, type: 1, offset: 0, size: 1, last: 3, past: 4,
                column: "gbt_samples.vehicle_state", atLast: "3"),
            Case(
                field: "speed", edition: e25, type: 1, offset: 3, size: 2, last: 2_200, past: 2_201,
                column: "telemetry.speed_dkmh", atLast: "2200"),
            Case(
                field: "odometer", edition: e25, type: 1, offset: 5, size: 4, last: 9_999_999, past: 10_000_000,
                column: "telemetry.odometer_hm", atLast: "9999999"),
            Case(
                field: "total_voltage", edition: e25, type: 1, offset: 9, size: 2, last: 10_000, past: 10_001,
                column: "telemetry.pack_voltage_dv", atLast: "10000"),
            Case(
                field: "total_current", edition: e25, type: 1, offset: 11, size: 2, last: 60_000, past: 60_001,
                column: "telemetry.pack_current_da", atLast: "30000"),
            Case(
                field: "soc", edition: e25, type: 1, offset: 13, size: 1, last: 100, past: 101,
                column: "telemetry.soc", atLast: "100"),
            Case(
                field: "insulation", edition: e25, type: 1, offset: 16, size: 2, last: 60_000, past: 60_001,
                column: "gbt_samples.insulation_kohm", atLast: "60000"),
            Case(
                field: "motor_speed", edition: e25, type: 2, offset: 4, size: 2, last: 65_531, past: 65_532,
                column: "gbt_motors.speed_rpm", atLast: "33531"),
            Case(
                field: "motor_torque", edition: e25, type: 2, offset: 6, size: 4, last: 400_000, past: 400_001,
                column: "gbt_motors.torque_dnm", atLast: "200000"),
            Case(
                field: "motor_temperature", edition: e25, type: 2, offset: 10, size: 1, last: 250, past: 251,
                column: "gbt_motors.temp_c", atLast: "210"),
            Case(
                field: "crankshaft_speed", edition: e25, type: 4, offset: 0, size: 2, last: 60_000, past: 60_001,
                column: "gbt_samples.crankshaft_rpm", atLast: "60000"),
            Case(
                field: "coordinate_system", edition: e25, type: 5, offset: 1, size: 1, last: 3, past: 4,
                column: "gbt_2025_samples.coordinate_system", atLast: "3"),
            Case(
                field: "latitude", edition: e25, type: 5, offset: 6, size: 4, last: 90_000_000, past: 90_000_001,
                column: "gbt_2025_samples.latitude_e7", atLast: "900000000"),
            Case(
                field: "alarm_level", edition: e25, type: 6, offset: 0, size: 1, last: 3, past: 4,
                column: "telemetry.max_alarm_level", atLast: "3"),
            Case(
                field: "subsystem_current", edition: e25, type: 7, offset: 4, size: 2, last: 60_000, past: 60_001,
                column: "gbt_cell_voltages.current_da", atLast: "30000"),
            Case(
                field: "cell_voltage", edition: e25, type: 7, offset: 14, size: 2, last: 60_000, past: 60_001,
                column: "gbt_cell_voltages.max_mv", atLast: "60000", atPast: "3348"),
            Case(
                field: "probe_temperature", edition: e25, type: 8, offset: 6, size: 1, last: 250, past: 251,
                column: "gbt_probe_temperatures.max_c", atLast: "210", atPast: "28"),
        ]
        return all
    }()

    /// A realtime frame (Table 2 envelope) of `edition` at `time` carrying every block, with `patch`
    /// written over one field.
    static func frame(
        _ edition: GBT32960Edition, vin: VIN, time: [UInt8],
        patch: (type: UInt8, offset: Int, size: Int, value: UInt32)?
    ) -> [UInt8] {
        var unit = time
        for (type, body) in blocks(edition) {
            var body = body
            if let patch, patch.type == type {
                let bytes =
                    patch.size == 1 ? [UInt8(patch.value)] : patch.size == 2 ? word(patch.value) : dword(patch.value)
                body.replaceSubrange(patch.offset..<(patch.offset + patch.size), with: bytes)
            }
            unit += [type] + body
        }
        if edition == .edition2025 { unit += [0xFF, 0x02, 0x00, 0x00, 0x00, 0x00] }  // RSA, empty r and s
        let start: UInt8 = edition == .edition2025 ? 0x24 : 0x23
        var out: [UInt8] = [start, start, 0x02, 0xFE]
        vin.withUnsafeBytes { out += $0 }
        out += [0x01] + word(UInt32(unit.count)) + unit
        out.append(out[2...].reduce(0, ^))
        return out
    }

    static func time(_ ms: Int64) -> [UInt8] { GBT32960Time(epochSeconds: ms / 1000, utcOffsetSeconds: beijing).bytes }

    static func report<R>(_ frame: [UInt8], _ body: (GBT32960RealtimeReport) throws -> R) throws -> R {
        try frame.withUnsafeBytes { raw in
            let view = try GBT32960Decoder().decodeComplete(raw)
            return try body(GBT32960RealtimeReport(dataUnit: view.dataUnit, edition: view.header.edition))
        }
    }

    @Test func everyValuePastItsRangeIsStoredAsMissingAndItsLastValueAsItself() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let vin = testVIN(7)
        let stored = Self.cases.filter { $0.column != nil }
        // Case i: past its range at noon − 20 i − 10 s, at its last valid value at noon − 20 i − 20 s.
        for (index, c) in stored.enumerated() {
            let base = noon - Int64(index) * 20_000
            for (ms, value) in [(base - 10_000, c.past), (base - 20_000, c.last)] {
                let frame = Self.frame(
                    c.edition, vin: vin, time: Self.time(ms), patch: (c.type, c.offset, c.size, value))
                let entry = frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: Self.beijing) }
                #expect(try await writer.storeGBT32960(entry) == CommitOutcome(stored: 1), "\(c)")
            }
        }
        store.stop()
        let file = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)"
        for (index, c) in stored.enumerated() {
            let parts = c.column!.split(separator: ".")
            let base = noon - Int64(index) * 20_000
            func value(_ ms: Int64) throws -> [String] {
                try query(file, "SELECT ifnull(\(parts[1]), 'NULL') FROM \(parts[0]) WHERE ts = \(ms)")
            }
            #expect(try value(base - 10_000) == [c.atPast], "\(c)")
            #expect(try value(base - 20_000) == [c.atLast], "\(c): the last value in range")
        }
    }

    /// Table 9's brake byte: 0–100 travel, 0 = off, 0x65 (101) = on without a travel value. Neither
    /// 0x65 nor a travel becomes a percentage it is not.
    @Test func theBrakeByteIsTravelOrOnWithoutTravelNeverOneHundredAndOnePercent() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let bytes: [UInt32] = [0x00, 0x28, 0x64, 0x65, 0x66, 0xFE]
        for (index, raw) in bytes.enumerated() {
            let frame = Self.frame(
                .edition2016, vin: testVIN(8), time: Self.time(noon - Int64(index) * 10_000),
                patch: (0x01, 19, 1, raw))
            let entry = frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: Self.beijing) }
            #expect(try await writer.storeGBT32960(entry) == CommitOutcome(stored: 1))
        }
        store.stop()
        let file = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)"
        let rows = try query(
            file,
            "SELECT ifnull(brake_pct, 'NULL') || ',' || ifnull(brake_on, 'NULL') FROM gbt_samples ORDER BY ts DESC")
        #expect(rows == ["0,0", "40,1", "100,1", "NULL,1", "NULL,NULL", "NULL,NULL"])
    }
}
