import HorgosWire

/// The schema of Horgos files, their versions and the migrations between them.
///
/// Every file records its version in `PRAGMA user_version` and describes itself in `meta`
/// (kind, region, partition start/end in ms, schema version, created by), so a file copied out of its
/// directory still says what it holds. Version history:
///
/// - 0: an empty file (created fresh).
/// - 1: first release. Registry without the `rejected`/`events` counters, `active_dtcs` and the
///      fleet-health indexes; partitions without `events`/`event_dtcs`.
/// - 2: the current schema (adds EVENT storage, the rejected counter, the fleet-health indexes).
///
/// Opening a file of an older version migrates it in one transaction; a newer version is refused
/// (`StoreError.Kind.schemaTooNew`) rather than written by code that does not know it.
public enum StoreSchema {
    /// The version this code writes.
    public static let currentVersion = 2

    /// What a file holds.
    public enum FileKind: String, Sendable, Hashable {
        case registry
        case telemetry
    }

    static let metaDDL = "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"

    /// Registry, current version.
    static let registryDDL = """
        CREATE TABLE vehicles(
            id INTEGER PRIMARY KEY, vin TEXT NOT NULL UNIQUE,
            first_seen INTEGER, last_seen INTEGER, last_received INTEGER,
            latitude_e7 INTEGER, longitude_e7 INTEGER, speed_dkmh INTEGER, soc INTEGER,
            max_cell_temp INTEGER, min_cell_temp INTEGER, status INTEGER,
            max_alarm_level INTEGER, alarm_flags INTEGER NOT NULL DEFAULT 0, alarm_time INTEGER,
            records INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE active_dtcs(
            vehicle_id INTEGER NOT NULL, source INTEGER NOT NULL, code INTEGER NOT NULL, since INTEGER NOT NULL,
            PRIMARY KEY(vehicle_id, source, code)) WITHOUT ROWID;
        \(fleetHealthIndexesDDL)
        """

    /// Indexes that let fleet health count each condition over an index range instead of evaluating
    /// seven aggregates on every vehicle row (measured: 25 ms of CPU for 50,000 vehicles without them).
    /// The writer pays for them once per vehicle per transaction, not per record.
    static let fleetHealthIndexesDDL = """
        CREATE INDEX vehicles_last_seen ON vehicles(last_seen);
        CREATE INDEX vehicles_soc ON vehicles(soc);
        CREATE INDEX vehicles_max_cell_temp ON vehicles(max_cell_temp);
        CREATE INDEX vehicles_alarmed ON vehicles(id) WHERE max_alarm_level >= 1 OR alarm_flags != 0;
        """

    /// Telemetry partition, current version. `telemetry` is a rowid table appended in arrival order
    /// with no per-row index; `chunks` has one row per stored run of one vehicle's rows.
    static let telemetryDDL = """
        CREATE TABLE vehicles(id INTEGER PRIMARY KEY, vin TEXT NOT NULL);
        CREATE TABLE telemetry(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL,
            latitude_e7 INTEGER, longitude_e7 INTEGER, odometer_hm INTEGER, speed_dkmh INTEGER,
            heading_cdeg INTEGER, pack_voltage_dv INTEGER, pack_current_da INTEGER, soc INTEGER,
            max_cell_temp INTEGER, min_cell_temp INTEGER, max_alarm_level INTEGER, status INTEGER NOT NULL,
            aux_battery_cv INTEGER, alarm_flags INTEGER NOT NULL, remaining_range_km INTEGER);
        CREATE TABLE chunks(
            vehicle_id INTEGER NOT NULL, t_min INTEGER NOT NULL, t_max INTEGER NOT NULL,
            first_rowid INTEGER NOT NULL, row_count INTEGER NOT NULL,
            PRIMARY KEY(vehicle_id, t_min, first_rowid)) WITHOUT ROWID;
        \(eventsDDL)
        """

    static let eventsDDL = """
        CREATE TABLE events(
            id INTEGER PRIMARY KEY, vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL,
            max_alarm_level INTEGER, alarm_flags INTEGER NOT NULL, dtc_count INTEGER NOT NULL,
            UNIQUE(vehicle_id, ts));
        CREATE TABLE event_dtcs(
            event_id INTEGER NOT NULL, code INTEGER NOT NULL, source INTEGER NOT NULL, state INTEGER NOT NULL);
        """

    /// One step from `from` to `from + 1`.
    struct Migration {
        let kind: FileKind
        let from: Int
        let sql: String
    }

    static let migrations: [Migration] = [
        Migration(
            kind: .registry, from: 1,
            sql: """
                ALTER TABLE vehicles ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE vehicles ADD COLUMN events INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE active_dtcs(
                    vehicle_id INTEGER NOT NULL, source INTEGER NOT NULL, code INTEGER NOT NULL,
                    since INTEGER NOT NULL, PRIMARY KEY(vehicle_id, source, code)) WITHOUT ROWID;
                """ + fleetHealthIndexesDDL),
        Migration(kind: .telemetry, from: 1, sql: eventsDDL),
    ]

    /// Brings a freshly opened writable file to the current version: creates it (version 0),
    /// migrates it (older), checks it (current) or refuses it (newer, or another kind or region).
    static func prepare(
        _ db: SQLiteConnection, kind: FileKind, region: Region, range: (start: Int64, end: Int64)?, createdBy: String
    ) throws(StoreError) {
        let version = Int(try db.scalar("PRAGMA user_version") ?? 0)
        if version > currentVersion {
            throw StoreError(
                .schemaTooNew, message: "schema version \(version) > \(currentVersion)",
                context: "open \(db.name)")
        }
        if version == currentVersion {
            try checkMeta(db, kind: kind, region: region)
            return
        }
        try db.exec("BEGIN IMMEDIATE")
        do throws(StoreError) {
            if version == 0 {
                try db.exec(metaDDL + (kind == .registry ? registryDDL : telemetryDDL))
                var rows: [(String, String)] = [
                    ("kind", kind.rawValue), ("region", region.code), ("created_by", createdBy),
                ]
                if let range {
                    rows += [("partition_start_ms", "\(range.start)"), ("partition_end_ms", "\(range.end)")]
                }
                let insert = try db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")
                for (key, value) in rows {
                    insert.bind(1, key)
                    insert.bind(2, value)
                    try insert.run()
                }
            } else {
                try checkMeta(db, kind: kind, region: region)
                for step in version..<currentVersion {
                    guard let migration = migrations.first(where: { $0.kind == kind && $0.from == step }) else {
                        throw StoreError(
                            .schemaTooNew, message: "no migration from version \(step)",
                            context: "migrate \(db.name)")
                    }
                    try db.exec(migration.sql)
                }
            }
            try db.exec(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '\(currentVersion)');"
                    + "PRAGMA user_version = \(currentVersion)")
            try db.exec("COMMIT")
        } catch {
            try? db.exec("ROLLBACK")
            throw error
        }
    }

    static func checkMeta(_ db: SQLiteConnection, kind: FileKind, region: Region) throws(StoreError) {
        let stmt = try db.prepare("SELECT key, value FROM meta WHERE key IN ('kind', 'region')")
        var meta: [String: String] = [:]
        while try stmt.step() { meta[stmt.text(0)] = stmt.text(1) }
        if meta["kind"] != kind.rawValue || meta["region"] != region.code {
            throw StoreError(
                .foreignFile,
                message: "expected \(kind.rawValue) of \(region.code), found "
                    + "\(meta["kind"] ?? "?") of \(meta["region"] ?? "?")",
                context: "open \(db.name)")
        }
    }
}
