import CSQLite
import HorgosWire

#if canImport(Glibc)
    import Glibc
#endif

/// One open telemetry partition (one UTC day of one region) on the writer thread, with its prepared
/// statements and what the writer knows about it.
final class Partition {
    let day: UTCDay
    let db: SQLiteConnection
    let insertRow: SQLiteStatement
    let insertChunk: SQLiteStatement
    let insertVehicle: SQLiteStatement
    let findInChunks: SQLiteStatement
    let findInRange: SQLiteStatement
    let insertEvent: SQLiteStatement
    let insertDTC: SQLiteStatement
    /// Vehicle ids present in this partition's `vehicles` table.
    var knownVehicles: Set<Int64> = []
    var inTransaction = false
    /// The GB/T 32960 tables, once a GB/T 32960 frame was written here (Partition+GBT32960.swift).
    var gbt32960: GBT32960Tables?
    /// Monotonic ns of the last transaction that wrote here (idle partitions are closed).
    var lastUsedNs: UInt64 = StoreClock.monotonicNs()
    /// Stored latitudes and longitudes are rounded to multiples of this (1e-7 degrees; 1: as received),
    /// the region's `RegionStorePolicy.positionStep`.
    let positionStep: Int64

    init(day: UTCDay, path: String, region: Region, configuration: StoreConfiguration) throws(StoreError) {
        self.day = day
        positionStep = configuration.regionPolicies[region]?.positionStep ?? 1
        if !StoreFiles.exists(path) {
            try Self.createWithSchema(path, region: region, day: day, createdBy: configuration.createdBy)
        }
        db = try SQLiteConnection(path: path, readOnly: false)
        // synchronous=NORMAL: durability comes from the journal (the shards are rebuilt from it).
        try db.configureForWriting(
            durability: .process, cacheKiB: configuration.cacheKiB,
            busyTimeoutMs: configuration.busyTimeoutMs)
        try db.exec("PRAGMA journal_size_limit=\(configuration.walTruncateBytes)")
        // Deleted content is overwritten with zeros (an erasure by VIN must leave no bytes of the vehicle
        // behind); rows are only ever appended otherwise, so this costs nothing on the ingest path.
        try db.exec("PRAGMA secure_delete=ON")
        db.takeOverCheckpoints()
        try StoreSchema.prepare(
            db, kind: .telemetry, region: region, range: (day.startMs, day.endMs), createdBy: configuration.createdBy)
        insertRow = try db.prepare(
            """
            INSERT INTO telemetry(vehicle_id, ts, latitude_e7, longitude_e7, odometer_hm, speed_dkmh, heading_cdeg,
              pack_voltage_dv, pack_current_da, soc, max_cell_temp, min_cell_temp, max_alarm_level, status,
              aux_battery_cv, alarm_flags, remaining_range_km)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
            """)
        insertChunk = try db.prepare(
            "INSERT INTO chunks(vehicle_id, t_min, t_max, first_rowid, row_count) VALUES (?1, ?2, ?3, ?4, ?5)")
        insertVehicle = try db.prepare("INSERT OR IGNORE INTO vehicles(id, vin) VALUES (?1, ?2)")
        // Newest chunk first (the index read backwards, no sort): a resend usually hits the latest
        // chunk at or before its timestamp, so a lookup reads one chunk instead of the whole day's.
        findInChunks = try db.prepare(
            """
            SELECT 1 FROM chunks c JOIN telemetry t ON t.rowid BETWEEN c.first_rowid AND c.first_rowid + c.row_count - 1
            WHERE c.vehicle_id = ?1 AND c.t_min <= ?2 AND c.t_max >= ?2 AND t.ts = ?2 AND t.vehicle_id = ?1
            ORDER BY c.t_min DESC LIMIT 1
            """)
        findInRange = try db.prepare("SELECT 1 FROM telemetry WHERE rowid BETWEEN ?1 AND ?2 AND ts = ?3 LIMIT 1")
        insertEvent = try db.prepare(
            """
            INSERT OR IGNORE INTO events(vehicle_id, ts, max_alarm_level, alarm_flags, dtc_count)
            VALUES (?1, ?2, ?3, ?4, ?5)
            """)
        insertDTC = try db.prepare("INSERT INTO event_dtcs(event_id, code, source, state) VALUES (?1, ?2, ?3, ?4)")
        let vehicles = try db.prepare("SELECT id FROM vehicles")
        while try vehicles.step() { knownVehicles.insert(vehicles.int64(0)) }
    }

    /// A new day file appears with its schema or not at all: it is built under a temporary name and
    /// renamed into place, so a reader listing the region (horgosctl, a backup, a test) never opens a file
    /// that has no tables yet. A temporary file a crash left behind is started afresh.
    static func createWithSchema(_ path: String, region: Region, day: UTCDay, createdBy: String) throws(StoreError) {
        let temporary = path + ".creating"
        unlink(temporary)
        do {
            let db = try SQLiteConnection(path: temporary, readOnly: false)
            try StoreSchema.prepare(
                db, kind: .telemetry, region: region, range: (day.startMs, day.endMs), createdBy: createdBy)
        }  // closed here: a rollback journal, nothing beside the file
        guard rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw StoreError(.fileSystem, message: message, context: "rename \(temporary)")
        }
    }

    func begin() throws(StoreError) {
        if !inTransaction {
            lastUsedNs = StoreClock.monotonicNs()
            try db.exec("BEGIN IMMEDIATE")
            inTransaction = true
        }
    }

    /// Adds `id` to this partition's vehicle table once (self-description and registry repair).
    @inline(__always)
    func ensureVehicle(_ id: Int64, vin: VIN) throws(StoreError) {
        if knownVehicles.contains(id) { return }
        try vin.withUnsafeBytes { (bytes) throws(StoreError) in
            insertVehicle.bind(1, id)
            insertVehicle.bindStatic(2, text: bytes)
            try insertVehicle.run()
        }
        knownVehicles.insert(id)
    }

    /// Appends one record and returns its rowid. "Not available" sentinels are bound as NULL.
    @inline(__always)
    func append(_ r: TelemetryRecordView, vehicleID: Int64, timestampMs: Int64) throws(StoreError) -> Int64 {
        typealias NA = TelemetryRecord.NotAvailable
        let s = insertRow
        s.bind(1, vehicleID)
        s.bind(2, timestampMs)
        let lat = r.latitudeE7
        let step = positionStep
        if lat == NA.coordinate { s.bindNull(3) } else { s.bind(3, RegionStorePolicy.coarsen(Int64(lat), step: step)) }
        let lon = r.longitudeE7
        if lon == NA.coordinate { s.bindNull(4) } else { s.bind(4, RegionStorePolicy.coarsen(Int64(lon), step: step)) }
        let odo = r.odometerHm
        if odo == NA.u32 { s.bindNull(5) } else { s.bind(5, Int64(odo)) }
        let speed = r.speedDkmh
        if speed == NA.u16 { s.bindNull(6) } else { s.bind(6, Int64(speed)) }
        let heading = r.headingCdeg
        if heading == NA.u16 { s.bindNull(7) } else { s.bind(7, Int64(heading)) }
        let voltage = r.packVoltageDv
        if voltage == NA.u16 { s.bindNull(8) } else { s.bind(8, Int64(voltage)) }
        let current = r.packCurrentDa
        if current == NA.current { s.bindNull(9) } else { s.bind(9, Int64(current)) }
        let soc = r.soc
        if soc == NA.u8 { s.bindNull(10) } else { s.bind(10, Int64(soc)) }
        let maxT = r.maxCellTemp
        if maxT == NA.temperature { s.bindNull(11) } else { s.bind(11, Int64(maxT)) }
        let minT = r.minCellTemp
        if minT == NA.temperature { s.bindNull(12) } else { s.bind(12, Int64(minT)) }
        let level = r.maxAlarmLevel
        if level == NA.u8 { s.bindNull(13) } else { s.bind(13, Int64(level)) }
        s.bind(14, Int64(r.status))
        let aux = r.auxBatteryCv
        if aux == NA.u16 { s.bindNull(15) } else { s.bind(15, Int64(aux)) }
        s.bind(16, Int64(r.alarmFlags))
        let range = r.remainingRangeKm
        if range == NA.u16 { s.bindNull(17) } else { s.bind(17, Int64(range)) }
        try s.run()
        return db.lastInsertRowID
    }

    /// Whether the vehicle already has a row at `timestampMs` here: in a committed or earlier chunk,
    /// or in the rows of the chunk being written (`openRange`, not yet in `chunks`).
    func contains(vehicleID: Int64, timestampMs: Int64, openRange: ClosedRange<Int64>?) throws(StoreError) -> Bool {
        if let openRange {
            findInRange.bind(1, openRange.lowerBound)
            findInRange.bind(2, openRange.upperBound)
            findInRange.bind(3, timestampMs)
            defer { findInRange.reset() }
            if try findInRange.step() { return true }
        }
        findInChunks.bind(1, vehicleID)
        findInChunks.bind(2, timestampMs)
        defer { findInChunks.reset() }
        return try findInChunks.step()
    }

    func addChunk(vehicleID: Int64, tMin: Int64, tMax: Int64, firstRowID: Int64, rowCount: Int) throws(StoreError) {
        insertChunk.bind(1, vehicleID)
        insertChunk.bind(2, tMin)
        insertChunk.bind(3, tMax)
        insertChunk.bind(4, firstRowID)
        insertChunk.bind(5, rowCount)
        try insertChunk.run()
    }

    /// The highest stored timestamp of every vehicle in this partition.
    func highWaterMarks() throws(StoreError) -> [(Int64, Int64)] {
        let stmt = try db.prepare("SELECT vehicle_id, max(t_max) FROM chunks GROUP BY vehicle_id")
        var result: [(Int64, Int64)] = []
        while try stmt.step() { result.append((stmt.int64(0), stmt.int64(1))) }
        return result
    }

    /// (id, VIN text) of every vehicle in this partition.
    func vehicles() throws(StoreError) -> [(Int64, String)] {
        let stmt = try db.prepare("SELECT id, vin FROM vehicles")
        var result: [(Int64, String)] = []
        while try stmt.step() { result.append((stmt.int64(0), stmt.text(1))) }
        return result
    }
}
