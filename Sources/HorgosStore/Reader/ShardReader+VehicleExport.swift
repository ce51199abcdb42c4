import HorgosWire

/// One value of a vehicle export row.
public enum VehicleExportValue: Sendable, Hashable {
    /// Not available (the unit sent the "not available" marker, or the frame lacked the block).
    case null
    /// An integer in the field's unit.
    case integer(Int64)
    /// A stored integer scaled down by 10^`scale` (`decimal(251234567, 7)` is 25.1234567).
    case decimal(Int64, scale: Int)
    /// Text.
    case text(String)
    /// A list of integers (nil: not available), e.g. per-cell voltages.
    case integers([Int64?])
    /// A list of objects, e.g. an event's DTCs.
    case objects([[String: Int64]])
}

/// One row of a vehicle export: the table (``VehicleExportDictionary``), its time, and its fields in
/// the dictionary's order.
public struct VehicleExportRow: Sendable, Hashable {
    /// `telemetry`, `event`, `gbt_sample`, `gbt_motor`, `gbt_cell_voltages`, `gbt_probe_temperatures`,
    /// `gbt_fault` or `gbt_2025_sample`.
    public var table: String
    /// Device time of the row, ms since the epoch (UTC).
    public var timestampMs: Int64
    /// Field name and value, in the dictionary's order (`time`/`timestamp_ms` are not repeated here).
    public var fields: [(name: String, value: VehicleExportValue)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.table == rhs.table && lhs.timestampMs == rhs.timestampMs
            && lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(table)
        hasher.combine(timestampMs)
    }

    /// The value of `name`, nil when the row has no such field.
    public subscript(_ name: String) -> VehicleExportValue? { fields.first { $0.name == name }?.value }
}

/// One field of the export's data dictionary.
public struct VehicleExportField: Sendable, Hashable, Codable {
    /// The JSON key.
    public var name: String
    /// The unit of the exported value (`degree`, `km/h`, `0.1 V`, ...; empty for codes and bit sets).
    public var unit: String
    /// What it is, how it was scaled from the wire, and where it comes from.
    public var description: String

    init(_ name: String, _ unit: String, _ description: String) {
        self.name = name
        self.unit = unit
        self.description = description
    }
}

/// One table of the export's data dictionary.
public struct VehicleExportTable: Sendable, Hashable, Codable {
    /// The `record` value of its rows.
    public var name: String
    /// The protocols its rows come from.
    public var sourceProtocols: [String]
    /// What one row is.
    public var description: String
    /// Its fields, in row order (after `record`, `region`, `time` and `timestamp_ms`).
    public var fields: [VehicleExportField]
}

/// The data dictionary of `horgosctl export --vin` (Proto/EXPORT.md is its prose): every table and
/// field with its unit and scaling. Written into the export's header, so the file describes itself.
public enum VehicleExportDictionary {
    /// The export format's name and version (the header's `format` and `version`).
    public static let format = "horgos-vehicle-export"
    public static let version = 1

    /// Every table, in the order rows of one day come.
    public static let tables: [VehicleExportTable] = [
        VehicleExportTable(
            name: "telemetry", sourceProtocols: ["horgos", "gbt32960"],
            description: "One stored record: a native TELEMETRY record (Proto/PROTOCOL.md), or the fields of a GB/T "
                + "32960 realtime/reissue frame that Horgos's record has (Proto/GBT32960.md, mapping)",
            fields: [
                .init("source_protocol", "", "horgos (native TELEMETRY frame) or gbt32960 (GB/T 32960 frame)"),
                .init("latitude", "degree", "WGS-84, north positive; stored as 1e-7 degree (rounded to the region's "
                    + "policy.<CC>.position_decimals when set)"),
                .init("longitude", "degree", "WGS-84, east positive; stored as 1e-7 degree (rounded as latitude)"),
                .init("odometer_km", "km", "stored as 0.1 km"),
                .init("speed_kmh", "km/h", "stored as 0.1 km/h"),
                .init("heading_deg", "degree", "clockwise from true north; stored as 0.01 degree"),
                .init("pack_voltage_v", "V", "traction battery voltage; stored as 0.1 V"),
                .init("pack_current_a", "A", "positive discharging, negative charging; stored as 0.1 A"),
                .init("soc_percent", "%", "state of charge"),
                .init("max_cell_temp_c", "°C", "highest cell temperature"),
                .init("min_cell_temp_c", "°C", "lowest cell temperature"),
                .init("max_alarm_level", "", "GB/T 32960 alarm level: 0 none, 1, 2, 3 (most severe)"),
                .init("status", "", "bit set: 0 ignition, 1 charging, 2 DC fast charging, 3 GNSS fix, 4-6 gear, "
                    + "7 plugged in, 8 doors open (Proto/PROTOCOL.md)"),
                .init("aux_battery_v", "V", "12 V system battery; stored as 0.01 V"),
                .init("alarm_flags", "", "bit set of the GB/T 32960 general alarm flags (Proto/PROTOCOL.md)"),
                .init("remaining_range_km", "km", "remaining range"),
            ]),
        VehicleExportTable(
            name: "event", sourceProtocols: ["horgos"],
            description: "One native EVENT frame: alarm state and diagnostic trouble codes at a time",
            fields: [
                .init("max_alarm_level", "", "GB/T 32960 alarm level 0-3; null: not available"),
                .init("alarm_flags", "", "bit set of the GB/T 32960 general alarm flags"),
                .init("dtcs", "", "list of {code, source, state}: the DTC (u32), its source ECU code and state "
                    + "(1 active, 0 cleared), as sent"),
            ]),
        VehicleExportTable(
            name: "gbt_sample", sourceProtocols: ["gbt32960"],
            description: "The GB/T 32960 fields of one realtime (command 2) or reissue (command 3) frame that "
                + "Horgos's record lacks (Proto/GBT32960.md section 3)",
            fields: [
                .init("command", "", "2 realtime, 3 reissue"),
                .init("vehicle_state", "", "1 started, 2 off, 3 other"),
                .init("charging_state", "", "1 parked charging, 2 driving charging, 3 not charging, 4 finished"),
                .init("running_mode", "", "1 electric, 2 hybrid, 3 fuel"),
                .init("dcdc_state", "", "1 working, 2 off"),
                .init("gear", "", "the gear byte as sent: bits 0-3 position, bit 4 braking force, bit 5 driving force"),
                .init("insulation_kohm", "kΩ", "insulation resistance"),
                .init("accelerator_pct", "%", "accelerator pedal"),
                .init("brake_pct", "%", "brake pedal travel (absent when the unit sent 0x65: on, no travel)"),
                .init("brake_on", "", "1 braking (a travel of 1-100 % or 0x65), 0 not braking"),
                .init("max_cell_mv", "mV", "highest cell voltage"),
                .init("max_cell_subsystem", "", "its energy-storage subsystem"),
                .init("max_cell_number", "", "its cell number"),
                .init("min_cell_mv", "mV", "lowest cell voltage"),
                .init("min_cell_subsystem", "", "its subsystem"),
                .init("min_cell_number", "", "its cell number"),
                .init("max_temp_c", "°C", "highest probe temperature (wire: 1 °C, offset -40)"),
                .init("max_temp_subsystem", "", "its subsystem"),
                .init("max_temp_probe", "", "its probe number"),
                .init("min_temp_c", "°C", "lowest probe temperature"),
                .init("min_temp_subsystem", "", "its subsystem"),
                .init("min_temp_probe", "", "its probe number"),
                .init("engine_state", "", "1 on, 2 off"),
                .init("crankshaft_rpm", "r/min", "engine crankshaft speed"),
                .init("fuel_rate", "0.01 L/100 km", "fuel consumption rate"),
                .init("fuel_cell_voltage_dv", "0.1 V", "fuel-cell voltage"),
                .init("fuel_cell_current_da", "0.1 A", "fuel-cell current"),
                .init("fuel_consumption", "0.01 kg/100 km", "hydrogen consumption rate"),
                .init("fuel_cell_probes", "°C", "fuel-cell probe temperatures (wire: 1 °C, offset -40; null "
                    + "entries: not available)"),
                .init("h2_max_temp_dc", "0.1 °C", "hydrogen system highest temperature"),
                .init("h2_max_concentration", "mg/kg", "highest hydrogen concentration"),
                .init("h2_max_pressure", "0.1 MPa", "highest hydrogen pressure"),
                .init("fuel_cell_dcdc_state", "", "high-voltage DC-DC state"),
                .init("alarm_level_raw", "", "the alarm block's level byte as sent"),
                .init("fault_count", "", "fault codes in the frame (rows of gbt_fault)"),
                .init("custom_blocks", "", "manufacturer-defined blocks in the frame (not stored)"),
            ]),
        VehicleExportTable(
            name: "gbt_motor", sourceProtocols: ["gbt32960"],
            description: "One drive motor of a GB/T 32960 frame",
            fields: [
                .init("number", "", "motor number"),
                .init("state", "", "1 consuming, 2 generating, 3 off, 4 ready"),
                .init("controller_temp_c", "°C", "controller temperature"),
                .init("speed_rpm", "r/min", "motor speed (wire offset -20000 applied)"),
                .init("torque_dnm", "0.1 N·m", "motor torque (wire offset applied)"),
                .init("temp_c", "°C", "motor temperature"),
                .init("voltage_dv", "0.1 V", "controller input voltage"),
                .init("current_da", "0.1 A", "controller DC bus current (wire offset applied)"),
            ]),
        VehicleExportTable(
            name: "gbt_cell_voltages", sourceProtocols: ["gbt32960"],
            description: "The cell voltages of one energy-storage subsystem in one GB/T 32960 frame",
            fields: [
                .init("subsystem", "", "energy-storage subsystem number"),
                .init("first_cell", "", "number of the first cell in this frame"),
                .init("cell_count", "", "cells in this frame"),
                .init("total_cells", "", "cells of the subsystem"),
                .init("voltage_dv", "0.1 V", "subsystem voltage"),
                .init("current_da", "0.1 A", "subsystem current"),
                .init("min_mv", "mV", "lowest available cell voltage of the list"),
                .init("max_mv", "mV", "highest available cell voltage of the list"),
                .init("cells_mv", "mV", "every cell's voltage from first_cell on (null: not available)"),
            ]),
        VehicleExportTable(
            name: "gbt_probe_temperatures", sourceProtocols: ["gbt32960"],
            description: "The probe temperatures of one energy-storage subsystem in one GB/T 32960 frame",
            fields: [
                .init("subsystem", "", "energy-storage subsystem number"),
                .init("probe_count", "", "probes"),
                .init("min_c", "°C", "lowest available probe temperature"),
                .init("max_c", "°C", "highest available probe temperature"),
                .init("temperatures_c", "°C", "every probe's temperature (wire: 1 °C, offset -40; null: not available)"),
            ]),
        VehicleExportTable(
            name: "gbt_fault", sourceProtocols: ["gbt32960"],
            description: "One fault code of a GB/T 32960 frame",
            fields: [
                .init("source", "", "1 energy storage, 2 drive motor, 3 engine, 4 other"),
                .init("code", "", "the fault code as sent (u32)"),
            ]),
        VehicleExportTable(
            name: "gbt_2025_sample", sourceProtocols: ["gbt32960"],
            description: "What a GB/T 32960-2025 frame adds",
            fields: [
                .init("coordinate_system", "", "1 WGS-84, 2 GCJ-02, 3 other (as sent)"),
                .init("latitude", "degree", "as sent in that coordinate system; stored as 1e-7 degree"),
                .init("longitude", "degree", "as sent in that coordinate system; stored as 1e-7 degree"),
                .init("signature_algorithm", "", "the data unit's signature algorithm byte (not verified)"),
                .init("signature_bytes", "byte", "size of its r and s"),
                .init("levelled_alarms", "", "list of {alarm bit, level} pairs as sent, flattened"),
            ]),
    ]
}

/// What `exportVehicle` read: rows per table, and the regions' files it read.
public struct VehicleExportSummary: Sendable, Hashable {
    /// Rows delivered per table.
    public var rows: [String: Int] = [:]

    /// No rows yet.
    public init() {}
    /// Rows delivered in all.
    public var total: Int { rows.values.reduce(0, +) }
}

extension ShardReader {
    /// Streams every stored row of `vin` with `fromMs <= time < toMs` to `body`: day files oldest first,
    /// and in each day its telemetry (with the protocol each record came in), events with their DTCs,
    /// then the GB/T 32960 tables, each in time order. Values are in the units of
    /// ``VehicleExportDictionary``. Reads each day file in its own read-only snapshot; memory stays flat.
    @discardableResult
    public func exportVehicle(
        _ vin: VIN, fromMs: Int64 = .min, toMs: Int64 = .max, _ body: (VehicleExportRow) throws -> Void
    ) throws -> VehicleExportSummary {
        var summary = VehicleExportSummary()
        func deliver(_ row: VehicleExportRow) throws {
            summary.rows[row.table, default: 0] += 1
            try body(row)
        }
        for day in partitionDays() where day.endMs > fromMs && day.startMs < toMs {
            let db = try Self.openReadOnly("\(directory)/\(day.partitionFileName)")
            try StoreSchema.checkMeta(db, kind: .telemetry, region: region)
            let find = try db.prepare("SELECT id FROM vehicles WHERE vin = ?1")
            find.bind(1, vin.description)
            var ids: [Int64] = []
            while try find.step() { ids.append(find.int64(0)) }
            let hasGBT = try Self.hasGBT32960Tables(db)
            for id in ids {
                try exportTelemetry(db, vehicleID: id, hasGBT: hasGBT, fromMs: fromMs, toMs: toMs, deliver)
                try exportEvents(db, vehicleID: id, fromMs: fromMs, toMs: toMs, deliver)
                if hasGBT { try exportGBT32960(db, vehicleID: id, fromMs: fromMs, toMs: toMs, deliver) }
            }
        }
        return summary
    }

    private func exportTelemetry(
        _ db: SQLiteConnection, vehicleID: Int64, hasGBT: Bool, fromMs: Int64, toMs: Int64,
        _ deliver: (VehicleExportRow) throws -> Void
    ) throws {
        let fromGBT = hasGBT ? "EXISTS (SELECT 1 FROM gbt_samples g WHERE g.vehicle_id = ?1 AND g.ts = t.ts)" : "0"
        let stmt = try db.prepare(
            """
            SELECT t.ts, t.latitude_e7, t.longitude_e7, t.odometer_hm, t.speed_dkmh, t.heading_cdeg, t.pack_voltage_dv,
              t.pack_current_da, t.soc, t.max_cell_temp, t.min_cell_temp, t.max_alarm_level, t.status,
              t.aux_battery_cv, t.alarm_flags, t.remaining_range_km, \(fromGBT)
            FROM chunks c JOIN telemetry t ON t.rowid BETWEEN c.first_rowid AND c.first_rowid + c.row_count - 1
            WHERE c.vehicle_id = ?1 AND c.t_min < ?3 AND c.t_max >= ?2 AND t.vehicle_id = ?1
              AND t.ts >= ?2 AND t.ts < ?3
            ORDER BY t.ts, t.rowid
            """)
        stmt.bind(1, vehicleID)
        stmt.bind(2, fromMs)
        stmt.bind(3, toMs)
        let scales: [Int] = [7, 7, 1, 1, 2, 1, 1, 0, 0, 0, 0, 0, 2, 0, 0]
        let names = VehicleExportDictionary.tables[0].fields.dropFirst().map(\.name)
        while try stmt.step() {
            var fields: [(name: String, value: VehicleExportValue)] = [
                ("source_protocol", .text(stmt.int64(16) != 0 ? "gbt32960" : "horgos"))
            ]
            for (index, name) in names.enumerated() {
                let column = Int32(index + 1)
                let scale = scales[index]
                fields.append(
                    (
                        name,
                        stmt.isNull(column)
                            ? .null : scale == 0 ? .integer(stmt.int64(column)) : .decimal(stmt.int64(column), scale: scale)
                    ))
            }
            try deliver(VehicleExportRow(table: "telemetry", timestampMs: stmt.int64(0), fields: fields))
        }
    }

    private func exportEvents(
        _ db: SQLiteConnection, vehicleID: Int64, fromMs: Int64, toMs: Int64, _ deliver: (VehicleExportRow) throws -> Void
    ) throws {
        guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'events'") == 1 else { return }
        let stmt = try db.prepare(
            """
            SELECT id, ts, max_alarm_level, alarm_flags FROM events
            WHERE vehicle_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts
            """)
        stmt.bind(1, vehicleID)
        stmt.bind(2, fromMs)
        stmt.bind(3, toMs)
        let dtcs = try db.prepare("SELECT code, source, state FROM event_dtcs WHERE event_id = ?1 ORDER BY rowid")
        while try stmt.step() {
            dtcs.bind(1, stmt.int64(0))
            var list: [[String: Int64]] = []
            while try dtcs.step() {
                list.append(["code": dtcs.int64(0), "source": dtcs.int64(1), "state": dtcs.int64(2)])
            }
            dtcs.reset()
            try deliver(
                VehicleExportRow(
                    table: "event", timestampMs: stmt.int64(1),
                    fields: [
                        ("max_alarm_level", stmt.isNull(2) ? .null : .integer(stmt.int64(2))),
                        ("alarm_flags", .integer(stmt.int64(3))), ("dtcs", .objects(list)),
                    ]))
        }
    }

    /// The GB/T 32960 tables: every column by name (the dictionary's names), BLOBs decoded.
    private func exportGBT32960(
        _ db: SQLiteConnection, vehicleID: Int64, fromMs: Int64, toMs: Int64, _ deliver: (VehicleExportRow) throws -> Void
    ) throws {
        let sources: [(table: String, record: String, order: String)] = [
            ("gbt_samples", "gbt_sample", "ts"), ("gbt_motors", "gbt_motor", "ts, number"),
            ("gbt_cell_voltages", "gbt_cell_voltages", "ts, subsystem, first_cell"),
            ("gbt_probe_temperatures", "gbt_probe_temperatures", "ts, subsystem"),
            ("gbt_faults", "gbt_fault", "ts, source, code"), ("gbt_2025_samples", "gbt_2025_sample", "ts"),
        ]
        for (table, record, order) in sources {
            guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = '\(table)'") == 1 else { continue }
            let stmt = try db.prepare(
                "SELECT * FROM \(table) WHERE vehicle_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY \(order)")
            stmt.bind(1, vehicleID)
            stmt.bind(2, fromMs)
            stmt.bind(3, toMs)
            let columns = (0..<stmt.columnCount).map { ($0, stmt.columnName($0)) }
            while try stmt.step() {
                var fields: [(name: String, value: VehicleExportValue)] = []
                var timestamp: Int64 = 0
                for (column, name) in columns {
                    switch name {
                    case "vehicle_id": continue
                    case "ts": timestamp = stmt.int64(column)
                    case "cells":
                        fields.append(("cells_mv", .integers(Self.words(stmt.blob(column)))))
                    case "temps":
                        fields.append(("temperatures_c", .integers(Self.temperatures(stmt.blob(column)))))
                    case "fuel_cell_probes":
                        fields.append((name, stmt.isNull(column) ? .null : .integers(Self.temperatures(stmt.blob(column)))))
                    case "levelled_alarms":
                        fields.append((name, stmt.isNull(column) ? .null : .integers(stmt.blob(column).map { Int64($0) })))
                    case "latitude_e7", "longitude_e7":
                        let exported = name == "latitude_e7" ? "latitude" : "longitude"
                        fields.append((exported, stmt.isNull(column) ? .null : .decimal(stmt.int64(column), scale: 7)))
                    default:
                        fields.append((name, stmt.isNull(column) ? .null : .integer(stmt.int64(column))))
                    }
                }
                try deliver(VehicleExportRow(table: record, timestampMs: timestamp, fields: fields))
            }
        }
    }

    /// Big-endian 16-bit values (GB/T 32960 cell voltages, 1 mV); 0xFFFE and 0xFFFF are not available.
    static func words(_ bytes: [UInt8]) -> [Int64?] {
        stride(from: 0, to: bytes.count - 1, by: 2).map { index in
            let value = Int64(bytes[index]) << 8 | Int64(bytes[index + 1])
            return value >= 0xFFFE ? nil : value
        }
    }

    /// Temperature bytes (1 °C, offset -40); 0xFE and 0xFF are not available.
    static func temperatures(_ bytes: [UInt8]) -> [Int64?] {
        bytes.map { $0 >= 0xFE ? nil : Int64($0) - 40 }
    }
}
