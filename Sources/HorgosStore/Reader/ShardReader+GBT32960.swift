import HorgosWire

/// The GB/T 32960 fields of one vehicle's latest sample (the `gbt_*` tables of its partition).
public struct GBT32960Details: Sendable, Hashable, Codable {
    /// One drive motor of the sample.
    public struct Motor: Sendable, Hashable, Codable {
        public var number: Int
        public var state: Int?
        public var controllerTemperatureC: Int?
        public var speedRpm: Int?
        public var torqueDnm: Int?
        public var temperatureC: Int?
        public var voltageDv: Int?
        public var currentDa: Int?
    }
    /// One fault code of the sample: source 1 energy storage, 2 drive motor, 3 engine, 4 other.
    public struct Fault: Sendable, Hashable, Codable {
        public var source: Int
        public var code: UInt32
    }

    public var timestampMs: Int64
    /// 2 realtime, 3 reissue.
    public var command: Int
    public var vehicleState: Int?
    public var chargingState: Int?
    public var runningMode: Int?
    public var dcdcState: Int?
    public var gear: Int?
    public var insulationKohm: Int?
    public var maxCellMv: Int?
    public var maxCellSubsystem: Int?
    public var maxCellNumber: Int?
    public var minCellMv: Int?
    public var minCellSubsystem: Int?
    public var minCellNumber: Int?
    public var maxTemperatureC: Int?
    public var maxTemperatureProbe: Int?
    public var minTemperatureC: Int?
    public var minTemperatureProbe: Int?
    /// Cells with a stored voltage at this time, and their spread (max − min, mV).
    public var cellsReported: Int
    public var cellSpreadMv: Int?
    /// Probes with a stored temperature at this time, and their spread (°C).
    public var probesReported: Int
    public var probeSpreadC: Int?
    public var motors: [Motor]
    public var faults: [Fault]
}

/// One battery-health sample: cell-voltage spread, temperature spread and insulation resistance
/// of one vehicle at one collection time. Nil where the frame did not carry the values.
public struct BatteryHealthSample: Sendable, Hashable, Codable {
    public var vin: String
    public var timestampMs: Int64
    public var maxCellMv: Int?
    public var minCellMv: Int?
    public var cellSpreadMv: Int?
    public var maxTemperatureC: Int?
    public var minTemperatureC: Int?
    public var temperatureSpreadC: Int?
    public var insulationKohm: Int?
}

extension ShardReader {
    /// Whether a partition file holds the GB/T 32960 tables (created by its first GB/T frame).
    static func hasGBT32960Tables(_ db: SQLiteConnection) throws(StoreError) -> Bool {
        try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'gbt_samples'") == 1
    }

    private func vehicleID(_ vin: VIN, in db: SQLiteConnection) throws(StoreError) -> Int64? {
        let find = try db.prepare("SELECT id FROM vehicles WHERE vin = ?1")
        find.bind(1, vin.description)
        return try find.step() ? find.int64(0) : nil
    }

    /// The GB/T 32960 fields of `vin`'s newest stored GB/T sample; nil when it never sent one.
    public func gbt32960Details(_ vin: VIN) throws(StoreError) -> GBT32960Details? {
        for day in partitionDays().reversed() {
            let db = try Self.openReadOnly("\(directory)/\(day.partitionFileName)")
            guard try Self.hasGBT32960Tables(db), let id = try vehicleID(vin, in: db) else { continue }
            let s = try db.prepare(
                """
                SELECT ts, command, vehicle_state, charging_state, running_mode, dcdc_state, gear, insulation_kohm,
                  max_cell_mv, max_cell_subsystem, max_cell_number, min_cell_mv, min_cell_subsystem, min_cell_number,
                  max_temp_c, max_temp_probe, min_temp_c, min_temp_probe
                FROM gbt_samples WHERE vehicle_id = ?1 ORDER BY ts DESC LIMIT 1
                """)
            s.bind(1, id)
            guard try s.step() else { continue }
            func opt(_ column: Int32) -> Int? { s.optionalInt64(column).map { Int($0) } }
            let ts = s.int64(0)
            var details = GBT32960Details(
                timestampMs: ts, command: Int(s.int64(1)), vehicleState: opt(2), chargingState: opt(3),
                runningMode: opt(4), dcdcState: opt(5), gear: opt(6), insulationKohm: opt(7), maxCellMv: opt(8),
                maxCellSubsystem: opt(9), maxCellNumber: opt(10), minCellMv: opt(11), minCellSubsystem: opt(12),
                minCellNumber: opt(13), maxTemperatureC: opt(14), maxTemperatureProbe: opt(15),
                minTemperatureC: opt(16), minTemperatureProbe: opt(17), cellsReported: 0, cellSpreadMv: nil,
                probesReported: 0, probeSpreadC: nil, motors: [], faults: [])
            let cells = try db.prepare(
                "SELECT sum(cell_count), max(max_mv) - min(min_mv) FROM gbt_cell_voltages WHERE vehicle_id = ?1 AND ts = ?2")
            cells.bind(1, id)
            cells.bind(2, ts)
            if try cells.step() {
                details.cellsReported = Int(cells.int64(0))
                details.cellSpreadMv = cells.optionalInt64(1).map { Int($0) }
            }
            let probes = try db.prepare(
                "SELECT sum(probe_count), max(max_c) - min(min_c) FROM gbt_probe_temperatures WHERE vehicle_id = ?1 AND ts = ?2")
            probes.bind(1, id)
            probes.bind(2, ts)
            if try probes.step() {
                details.probesReported = Int(probes.int64(0))
                details.probeSpreadC = probes.optionalInt64(1).map { Int($0) }
            }
            let motors = try db.prepare(
                """
                SELECT number, state, controller_temp_c, speed_rpm, torque_dnm, temp_c, voltage_dv, current_da
                FROM gbt_motors WHERE vehicle_id = ?1 AND ts = ?2 ORDER BY number
                """)
            motors.bind(1, id)
            motors.bind(2, ts)
            while try motors.step() {
                func m(_ c: Int32) -> Int? { motors.optionalInt64(c).map { Int($0) } }
                details.motors.append(
                    .init(
                        number: Int(motors.int64(0)), state: m(1), controllerTemperatureC: m(2), speedRpm: m(3),
                        torqueDnm: m(4), temperatureC: m(5), voltageDv: m(6), currentDa: m(7)))
            }
            let faults = try db.prepare(
                "SELECT source, code FROM gbt_faults WHERE vehicle_id = ?1 AND ts = ?2 ORDER BY source, code")
            faults.bind(1, id)
            faults.bind(2, ts)
            while try faults.step() {
                details.faults.append(.init(source: Int(faults.int64(0)), code: UInt32(truncatingIfNeeded: faults.int64(1))))
            }
            return details
        }
        return nil
    }

    /// Battery-health samples with `fromMs <= time < toMs`, oldest first: of `vin`, or of every GB/T
    /// 32960 vehicle of the region (nil). The spreads come from the stored cell and probe lists
    /// where the frames had them, else from the extreme-values block. At most `limit` samples.
    public func batteryHealth(_ vin: VIN?, fromMs: Int64, toMs: Int64, limit: Int = 1_000_000) throws(StoreError)
        -> [BatteryHealthSample]
    {
        var samples: [BatteryHealthSample] = []
        for day in partitionDays() where day.endMs > fromMs && day.startMs < toMs {
            let db = try Self.openReadOnly("\(directory)/\(day.partitionFileName)")
            guard try Self.hasGBT32960Tables(db) else { continue }
            var id: Int64 = -1
            if let vin {
                guard let found = try vehicleID(vin, in: db) else { continue }
                id = found
            }
            let s = try db.prepare(
                """
                SELECT v.vin, s.ts, s.insulation_kohm,
                  coalesce((SELECT max(max_mv) FROM gbt_cell_voltages c WHERE c.vehicle_id = s.vehicle_id AND c.ts = s.ts),
                    s.max_cell_mv),
                  coalesce((SELECT min(min_mv) FROM gbt_cell_voltages c WHERE c.vehicle_id = s.vehicle_id AND c.ts = s.ts),
                    s.min_cell_mv),
                  coalesce((SELECT max(max_c) FROM gbt_probe_temperatures p WHERE p.vehicle_id = s.vehicle_id
                    AND p.ts = s.ts), s.max_temp_c),
                  coalesce((SELECT min(min_c) FROM gbt_probe_temperatures p WHERE p.vehicle_id = s.vehicle_id
                    AND p.ts = s.ts), s.min_temp_c)
                FROM gbt_samples s JOIN vehicles v ON v.id = s.vehicle_id
                WHERE s.ts >= ?1 AND s.ts < ?2 AND (?3 < 0 OR s.vehicle_id = ?3)
                ORDER BY s.ts
                """)
            s.bind(1, fromMs)
            s.bind(2, toMs)
            s.bind(3, id)
            while try s.step(), samples.count < limit {
                func opt(_ column: Int32) -> Int? { s.optionalInt64(column).map { Int($0) } }
                let (maxMv, minMv, maxC, minC) = (opt(3), opt(4), opt(5), opt(6))
                samples.append(
                    BatteryHealthSample(
                        vin: s.text(0), timestampMs: s.int64(1), maxCellMv: maxMv, minCellMv: minMv,
                        cellSpreadMv: maxMv.flatMap { a in minMv.map { a - $0 } }, maxTemperatureC: maxC,
                        minTemperatureC: minC, temperatureSpreadC: maxC.flatMap { a in minC.map { a - $0 } },
                        insulationKohm: opt(2)))
            }
        }
        return samples
    }
}
