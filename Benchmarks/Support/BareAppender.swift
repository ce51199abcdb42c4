import CSQLite
import HorgosWire

/// The machine's limit for the store's schema, shared by `horgos-bench-store` (part a) and
/// `horgos-bench-floor` (stage c): one file, a partition's `telemetry` columns and pragmas (WAL,
/// `synchronous` FULL or NORMAL, an 8 MiB cache), no index, one prepared INSERT bound per record
/// ("not available" sentinels as NULL), a commit every 20,000 rows.
public final class BareAppender {
    private var db: OpaquePointer?
    private var stmt: OpaquePointer?
    private var inTransaction = 0
    /// Rows appended so far.
    public private(set) var rows = 0

    /// Creates the file at `path` (which must not exist) and begins the first transaction.
    /// `fsync`: `synchronous=FULL` (durability disk) rather than NORMAL (durability process).
    public init(path: String, fsync: Bool) {
        check(
            sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil), "open")
        let sync = fsync ? "FULL" : "NORMAL"
        check(
            sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=\(sync); PRAGMA cache_size=-8192;", nil, nil, nil),
            "pragma")
        check(
            sqlite3_exec(
                db,
                """
                CREATE TABLE telemetry(
                    vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                    latitude_e7 INTEGER, longitude_e7 INTEGER, odometer_hm INTEGER, speed_dkmh INTEGER,
                    heading_cdeg INTEGER, pack_voltage_dv INTEGER, pack_current_da INTEGER, soc INTEGER,
                    max_cell_temp INTEGER, min_cell_temp INTEGER, max_alarm_level INTEGER, status INTEGER NOT NULL,
                    aux_battery_cv INTEGER, alarm_flags INTEGER NOT NULL, remaining_range_km INTEGER)
                """, nil, nil, nil), "create")
        check(
            sqlite3_prepare_v2(
                db, "INSERT INTO telemetry VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)", -1,
                &stmt, nil), "prepare")
        check(sqlite3_exec(db, "BEGIN", nil, nil, nil), "begin")
    }

    /// Appends every record of a TELEMETRY payload (header and trailer excluded) for `vehicleID`.
    public func append(telemetryPayload p: UnsafeRawBufferPointer, vehicleID: Int64) {
        typealias NA = TelemetryRecord.NotAvailable
        let stmt = self.stmt
        func bind(_ i: Int32, _ v: Int64, _ na: Bool) {
            if na { sqlite3_bind_null(stmt, i) } else { sqlite3_bind_int64(stmt, i, v) }
        }
        let base = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        let count = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
        for index in 0..<count {
            let start = WireFormat.telemetryHeaderSize + index * WireFormat.recordSizeV1
            let r = TelemetryRecordView(
                bytes: UnsafeRawBufferPointer(rebasing: p[start..<(start + WireFormat.recordSizeV1)]), baseTimeMs: base)
            sqlite3_bind_int64(stmt, 1, vehicleID)
            sqlite3_bind_int64(stmt, 2, r.timestampMs)
            bind(3, Int64(r.latitudeE7), r.latitudeE7 == NA.coordinate)
            bind(4, Int64(r.longitudeE7), r.longitudeE7 == NA.coordinate)
            bind(5, Int64(r.odometerHm), r.odometerHm == NA.u32)
            bind(6, Int64(r.speedDkmh), r.speedDkmh == NA.u16)
            bind(7, Int64(r.headingCdeg), r.headingCdeg == NA.u16)
            bind(8, Int64(r.packVoltageDv), r.packVoltageDv == NA.u16)
            bind(9, Int64(r.packCurrentDa), r.packCurrentDa == NA.current)
            bind(10, Int64(r.soc), r.soc == NA.u8)
            bind(11, Int64(r.maxCellTemp), r.maxCellTemp == NA.temperature)
            bind(12, Int64(r.minCellTemp), r.minCellTemp == NA.temperature)
            bind(13, Int64(r.maxAlarmLevel), r.maxAlarmLevel == NA.u8)
            sqlite3_bind_int64(stmt, 14, Int64(r.status))
            bind(15, Int64(r.auxBatteryCv), r.auxBatteryCv == NA.u16)
            sqlite3_bind_int64(stmt, 16, Int64(r.alarmFlags))
            bind(17, Int64(r.remainingRangeKm), r.remainingRangeKm == NA.u16)
            check(sqlite3_step(stmt), "step")
            sqlite3_reset(stmt)
        }
        rows += count
        inTransaction += count
        if inTransaction >= 20_000 {
            check(sqlite3_exec(db, "COMMIT; BEGIN", nil, nil, nil), "commit")
            inTransaction = 0
        }
    }

    /// Commits the last transaction (the end of the timed loop).
    public func commit() {
        check(sqlite3_exec(db, "COMMIT", nil, nil, nil), "commit")
    }

    /// Checkpoints (TRUNCATE) and closes the file.
    public func close() {
        sqlite3_finalize(stmt)
        stmt = nil
        sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
        sqlite3_close(db)
        db = nil
    }

    private func check(_ rc: Int32, _ what: String) {
        if rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW {
            fatalError("bare append \(what): \(rc) \(db.map { String(cString: sqlite3_errmsg($0)) } ?? "")")
        }
    }
}
