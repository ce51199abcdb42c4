import HorgosWire

/// The region's registry file on the writer thread: one row per vehicle with its latest state and
/// counters, plus active DTCs.
final class RegistryDatabase {
    let db: SQLiteConnection
    let insertVehicle: SQLiteStatement
    let insertNewVehicle: SQLiteStatement
    let updateVehicle: SQLiteStatement
    let updateAlarm: SQLiteStatement
    let activateDTC: SQLiteStatement
    let clearDTC: SQLiteStatement
    /// The region's position rounding for the latest position (`RegionStorePolicy.positionStep`).
    let positionStep: Int64

    init(path: String, region: Region, configuration: StoreConfiguration) throws(StoreError) {
        positionStep = configuration.regionPolicies[region]?.positionStep ?? 1
        db = try SQLiteConnection(path: path, readOnly: false)
        // The registry is a summary derived from the partitions (latest state, counters, active DTCs),
        // so its commits are not fsynced whatever `durability` says: acknowledged records and events
        // are in the partitions, which are. It survives a daemon crash (the WAL is written before
        // the ACK); after a power loss it may lack the last moments' updates, which the next records
        // refresh, and vehicles it lost are re-registered from the partitions at open. One fsync per
        // transaction instead of two: in vehicle-mode load (scenario B) the ACK p99 fell from 250 to
        // 95 ms.
        try db.configureForWriting(
            durability: .process, cacheKiB: configuration.cacheKiB,
            busyTimeoutMs: configuration.busyTimeoutMs)
        try db.exec("PRAGMA journal_size_limit=\(configuration.walTruncateBytes)")
        // Freed content is zeroed: a vehicle row rewritten by an update or deleted by an erasure leaves
        // no copy of the old bytes in the file (Debian's SQLite has it on by default; others may not).
        try db.exec("PRAGMA secure_delete=ON")
        db.takeOverCheckpoints()
        try StoreSchema.prepare(db, kind: .registry, region: region, range: nil, createdBy: configuration.createdBy)
        insertVehicle = try db.prepare("INSERT INTO vehicles(id, vin, last_received) VALUES (?1, ?2, ?3)")
        // A vehicle first seen in this transaction: one insert with its final values (not an insert
        // then an update, which would touch the row and each fleet-health index twice).
        insertNewVehicle = try db.prepare(
            """
            INSERT INTO vehicles(id, vin, first_seen, last_received, records, duplicates, rejected, last_seen,
              latitude_e7, longitude_e7, speed_dkmh, soc, max_cell_temp, min_cell_temp, status,
              max_alarm_level, alarm_flags, alarm_time)
            VALUES (?1, ?17, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, coalesce(?16, 0), ?7)
            """)
        // Values of the newest record of the transaction replace the row's only when that record is
        // newer than `last_seen`; a missing value ("not available") keeps the last known one.
        let newer = "?7 > coalesce(last_seen, -9223372036854775807)"
        let newerAlarm = "?7 >= coalesce(alarm_time, -9223372036854775807)"
        updateVehicle = try db.prepare(
            """
            UPDATE vehicles SET
              first_seen = CASE WHEN ?2 < coalesce(first_seen, 9223372036854775807) THEN ?2 ELSE first_seen END,
              last_received = ?3, records = records + ?4, duplicates = duplicates + ?5, rejected = rejected + ?6,
              latitude_e7 = CASE WHEN \(newer) THEN coalesce(?8, latitude_e7) ELSE latitude_e7 END,
              longitude_e7 = CASE WHEN \(newer) THEN coalesce(?9, longitude_e7) ELSE longitude_e7 END,
              speed_dkmh = CASE WHEN \(newer) THEN ?10 ELSE speed_dkmh END,
              soc = CASE WHEN \(newer) THEN coalesce(?11, soc) ELSE soc END,
              max_cell_temp = CASE WHEN \(newer) THEN ?12 ELSE max_cell_temp END,
              min_cell_temp = CASE WHEN \(newer) THEN ?13 ELSE min_cell_temp END,
              status = CASE WHEN \(newer) THEN ?14 ELSE status END,
              max_alarm_level = CASE WHEN \(newerAlarm) THEN ?15 ELSE max_alarm_level END,
              alarm_flags = CASE WHEN \(newerAlarm) THEN ?16 ELSE alarm_flags END,
              alarm_time = CASE WHEN \(newerAlarm) THEN ?7 ELSE alarm_time END,
              last_seen = CASE WHEN \(newer) THEN ?7 ELSE last_seen END
            WHERE id = ?1
            """)
        let eventIsNewer = "?4 >= coalesce(alarm_time, -9223372036854775807)"
        updateAlarm = try db.prepare(
            """
            UPDATE vehicles SET events = events + 1, last_received = ?5,
              max_alarm_level = CASE WHEN \(eventIsNewer) THEN ?2 ELSE max_alarm_level END,
              alarm_flags = CASE WHEN \(eventIsNewer) THEN ?3 ELSE alarm_flags END,
              alarm_time = CASE WHEN \(eventIsNewer) THEN ?4 ELSE alarm_time END
            WHERE id = ?1
            """)
        activateDTC = try db.prepare(
            "INSERT OR IGNORE INTO active_dtcs(vehicle_id, source, code, since) VALUES (?1, ?2, ?3, ?4)")
        clearDTC = try db.prepare("DELETE FROM active_dtcs WHERE vehicle_id = ?1 AND source = ?2 AND code = ?3")
    }

    func insert(id: Int64, vin: VIN, nowMs: Int64) throws(StoreError) {
        try vin.withUnsafeBytes { (bytes) throws(StoreError) in
            insertVehicle.bind(1, id)
            insertVehicle.bindStatic(2, text: bytes)
            insertVehicle.bind(3, nowMs)
            try insertVehicle.run()
        }
    }

    /// Deletes `vin`'s row and its active DTCs inside the running transaction; returns the rows
    /// removed per table (empty when the registry does not know the vehicle).
    func erase(_ vin: VIN) throws(StoreError) -> [String: Int] {
        let find = try db.prepare("SELECT id FROM vehicles WHERE vin = ?1")
        find.bind(1, vin.description)
        guard try find.step() else { return [:] }
        let id = find.int64(0)
        find.reset()
        var removed: [String: Int] = [:]
        for (table, sql) in [
            ("active_dtcs", "DELETE FROM active_dtcs WHERE vehicle_id = ?1"),
            ("vehicles", "DELETE FROM vehicles WHERE id = ?1"),
        ] {
            let delete = try db.prepare(sql)
            delete.bind(1, id)
            try delete.run()
            if db.changes > 0 { removed[table] = Int(db.changes) }
        }
        return removed
    }

    /// Writes the transaction's effect on one vehicle (inserting it if it is new in this transaction).
    func update(_ entry: VehicleEntry, nowMs: Int64) throws(StoreError) {
        typealias NA = TelemetryRecord.NotAvailable
        let s = entry.unregistered ? insertNewVehicle : updateVehicle
        s.bind(1, entry.id)
        s.bind(2, entry.txMinTs == Int64.max ? nil : entry.txMinTs)
        s.bind(3, nowMs)
        s.bind(4, entry.txStored)
        s.bind(5, entry.txDuplicates)
        s.bind(6, entry.txRejected)
        if let r = entry.txLatest {
            s.bind(7, entry.txLatestTs)
            let step = positionStep
            s.bind(8, r.latitudeE7 == NA.coordinate ? nil : RegionStorePolicy.coarsen(Int64(r.latitudeE7), step: step))
            s.bind(9, r.longitudeE7 == NA.coordinate ? nil : RegionStorePolicy.coarsen(Int64(r.longitudeE7), step: step))
            s.bind(10, r.speedDkmh == NA.u16 ? nil : Int64(r.speedDkmh))
            s.bind(11, r.soc == NA.u8 ? nil : Int64(r.soc))
            s.bind(12, r.maxCellTemp == NA.temperature ? nil : Int64(r.maxCellTemp))
            s.bind(13, r.minCellTemp == NA.temperature ? nil : Int64(r.minCellTemp))
            s.bind(14, Int64(r.status))
            s.bind(15, r.maxAlarmLevel == NA.u8 ? nil : Int64(r.maxAlarmLevel))
            s.bind(16, Int64(r.alarmFlags))
        } else {
            for index in Int32(7)...16 { s.bindNull(index) }
        }
        if entry.unregistered {
            try entry.vin.withUnsafeBytes { (bytes) throws(StoreError) in
                s.bindStatic(17, text: bytes)
                try s.run()
            }
        } else {
            try s.run()
        }
    }
}

/// What the writer keeps in memory per vehicle: its id, the dedup high-water mark and the
/// running transaction's effect.
struct VehicleEntry {
    let id: Int64
    let vin: VIN
    /// Highest stored device timestamp in the partitions within the horizon (Int64.min: none).
    var highWaterMark: Int64 = Int64.min
    /// First seen in the running transaction: its registry row is inserted at commit.
    var unregistered = false
    var touched = false
    var txStored = 0
    var txDuplicates = 0
    var txRejected = 0
    var txMinTs = Int64.max
    var txLatestTs = Int64.min
    var txLatest: TelemetryRecord?

    init(id: Int64, vin: VIN) {
        self.id = id
        self.vin = vin
    }

    mutating func resetTransaction() {
        touched = false
        txStored = 0
        txDuplicates = 0
        txRejected = 0
        txMinTs = Int64.max
        txLatestTs = Int64.min
        txLatest = nil
    }
}
