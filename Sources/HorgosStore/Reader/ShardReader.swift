import CSQLite
import HorgosWire

/// Read-only queries on one region's files, for `horgosctl` and the admin endpoint.
///
/// Every call opens the files it needs with `SQLITE_OPEN_READONLY` and closes them before returning;
/// WAL lets it read a consistent snapshot while the daemon's writer keeps committing, and a reader
/// never takes a write lock. Not Sendable-bound state: a value can be used from any thread.
/// Limits: the directory must be readable and its `-shm` files writable (as for any WAL reader).
public struct ShardReader: Sendable {
    public let stateDirectory: String
    public let region: Region
    var directory: String { StoreFiles.regionDirectory(stateDirectory, region) }

    public init(stateDirectory: String, region: Region) {
        self.stateDirectory = stateDirectory
        self.region = region
    }

    /// Days with a partition file, oldest first.
    public func partitionDays() -> [UTCDay] { StoreFiles.partitionDays(in: directory) }

    private func openRegistry() throws(StoreError) -> SQLiteConnection {
        let path = "\(directory)/\(StoreFiles.registryFileName)"
        guard StoreFiles.exists(path) else {
            throw StoreError(.notFound, message: "no registry for region \(region)", context: path)
        }
        let db = try Self.openReadOnly(path)
        try StoreSchema.checkMeta(db, kind: .registry, region: region)
        return db
    }

    /// Fleet health at `asOfMs` (default: now).
    public func fleetHealth(
        asOfMs: Int64 = StoreClock.systemMs(), lowSOCPercent: Int = 10, maxCellTempThresholdC: Int = 55
    ) throws(StoreError) -> FleetHealth {
        let db = try openRegistry()
        // Each count is an index range (see StoreSchema.fleetHealthIndexesDDL), not a per-row aggregate.
        let stmt = try db.prepare(
            """
            SELECT (SELECT count(*) FROM vehicles),
              (SELECT count(*) FROM vehicles WHERE last_seen >= ?1),
              (SELECT count(*) FROM vehicles WHERE last_seen < ?2)
                + (SELECT count(*) FROM vehicles WHERE last_seen IS NULL),
              (SELECT count(*) FROM (\(Self.alarmedVehicleIDs))),
              (SELECT count(*) FROM vehicles WHERE soc < ?3),
              (SELECT count(*) FROM vehicles WHERE max_cell_temp > ?4),
              (SELECT avg(soc) FROM vehicles WHERE soc IS NOT NULL)
            """)
        stmt.bind(1, asOfMs - 3_600_000)
        stmt.bind(2, asOfMs - 86_400_000)
        stmt.bind(3, lowSOCPercent)
        stmt.bind(4, maxCellTempThresholdC)
        _ = try stmt.step()
        return FleetHealth(
            region: region.code, vehiclesTotal: Int(stmt.int64(0)), reportingLastHour: Int(stmt.int64(1)),
            silentOver24h: Int(stmt.int64(2)), withActiveAlarms: Int(stmt.int64(3)), lowSOC: Int(stmt.int64(4)),
            overTemperature: Int(stmt.int64(5)), averageSOC: stmt.isNull(6) ? nil : stmt.double(6), asOfMs: asOfMs,
            lowSOCPercent: lowSOCPercent, maxCellTempThresholdC: maxCellTempThresholdC)
    }

    /// Ids of vehicles with an active alarm: alarm level or bits (partial index) or an active DTC.
    static let alarmedVehicleIDs = """
        SELECT id FROM vehicles WHERE max_alarm_level >= 1 OR alarm_flags != 0
        UNION SELECT vehicle_id FROM active_dtcs
        """

    private static func dtcs(_ db: SQLiteConnection, vehicleID: Int64) throws(StoreError) -> [ActiveDTC] {
        let stmt = try db.prepare(
            "SELECT source, code, since FROM active_dtcs WHERE vehicle_id = ?1 ORDER BY source, code")
        stmt.bind(1, vehicleID)
        var result: [ActiveDTC] = []
        while try stmt.step() {
            result.append(ActiveDTC(source: UInt8(stmt.int64(0)), code: UInt32(stmt.int64(1)), sinceMs: stmt.int64(2)))
        }
        return result
    }

    /// The latest state of `vin`, nil if the region never heard of it.
    public func vehicle(_ vin: VIN) throws(StoreError) -> VehicleState? {
        let db = try openRegistry()
        let stmt = try db.prepare(
            """
            SELECT id, vin, first_seen, last_seen, last_received, latitude_e7, longitude_e7, speed_dkmh, soc,
              max_cell_temp, min_cell_temp, status, max_alarm_level, alarm_flags, alarm_time,
              records, duplicates, rejected, events
            FROM vehicles WHERE vin = ?1
            """)
        stmt.bind(1, vin.description)
        guard try stmt.step() else { return nil }
        func opt<T: FixedWidthInteger>(_ c: Int32) -> T? { stmt.optionalInt64(c).map { T(truncatingIfNeeded: $0) } }
        return VehicleState(
            vin: stmt.text(1), firstSeenMs: stmt.optionalInt64(2), lastSeenMs: stmt.optionalInt64(3),
            lastReceivedMs: stmt.optionalInt64(4), latitudeE7: opt(5), longitudeE7: opt(6), speedDkmh: opt(7),
            soc: opt(8), maxCellTemp: opt(9), minCellTemp: opt(10), status: opt(11), maxAlarmLevel: opt(12),
            alarmFlags: UInt32(truncatingIfNeeded: stmt.int64(13)), alarmTimeMs: stmt.optionalInt64(14),
            records: Int(stmt.int64(15)), duplicates: Int(stmt.int64(16)), rejected: Int(stmt.int64(17)),
            events: Int(stmt.int64(18)), activeDTCs: try Self.dtcs(db, vehicleID: stmt.int64(0)))
    }

    /// Vehicles with an active alarm, most severe first (at most `limit`).
    public func activeAlarms(limit: Int = 1000) throws(StoreError) -> [VehicleAlarm] {
        let db = try openRegistry()
        let stmt = try db.prepare(
            """
            SELECT id, vin, max_alarm_level, alarm_flags, alarm_time, last_seen FROM vehicles
            WHERE id IN (\(Self.alarmedVehicleIDs))
            ORDER BY coalesce(max_alarm_level, 0) DESC, alarm_time DESC LIMIT ?1
            """)
        stmt.bind(1, limit)
        var result: [VehicleAlarm] = []
        while try stmt.step() {
            let flags = UInt32(truncatingIfNeeded: stmt.int64(3))
            result.append(
                VehicleAlarm(
                    vin: stmt.text(1), maxAlarmLevel: stmt.optionalInt64(2).map { UInt8(truncatingIfNeeded: $0) },
                    alarmFlags: flags, alarmNames: AlarmBit.names(in: flags), alarmTimeMs: stmt.optionalInt64(4),
                    lastSeenMs: stmt.optionalInt64(5), activeDTCs: try Self.dtcs(db, vehicleID: stmt.int64(0))))
        }
        return result
    }

    /// The stored records of `vin` with `fromMs <= timestamp < toMs`, in time order, across partitions.
    ///
    /// Per partition: one lookup in `chunks` by (vehicle, time), then reads of contiguous rowid ranges;
    /// no scan of other vehicles' rows. `limit` caps the points returned.
    public func track(_ vin: VIN, fromMs: Int64, toMs: Int64, limit: Int = 1_000_000) throws(StoreError) -> [TrackPoint]
    {
        // Vehicle ids are the registry's, the same in every partition: one indexed lookup.
        var id: Int64? = nil
        if StoreFiles.exists("\(directory)/\(StoreFiles.registryFileName)") {
            let registry = try openRegistry()
            let find = try registry.prepare("SELECT id FROM vehicles WHERE vin = ?1")
            find.bind(1, vin.description)
            if try find.step() { id = find.int64(0) }
        }
        var points: [TrackPoint] = []
        points.reserveCapacity(8192)
        var sorted = true
        for day in partitionDays() where day.endMs > fromMs && day.startMs < toMs {
            let db = try Self.openReadOnly("\(directory)/\(day.partitionFileName)")
            var vehicleID = id
            if vehicleID == nil {
                // Not in the registry (it lags a crash until the writer's next open): the partition knows.
                let find = try db.prepare("SELECT id FROM vehicles WHERE vin = ?1")
                find.bind(1, vin.description)
                if try find.step() { vehicleID = find.int64(0) }
            }
            guard let vehicleID else { continue }
            // No ORDER BY (it costs a temporary B-tree): the nested loop yields chunks in (vehicle, t_min)
            // order and a chunk's rows in rowid order, which is time order unless a vehicle sent
            // overlapping or unordered frames; the check below sorts only then.
            // NULLs come back as the wire's "not available" sentinels (no valid value equals one), so
            // each column costs one read instead of a type check plus a read.
            let stmt = try db.prepare(
                """
                SELECT t.ts, coalesce(t.latitude_e7, 2147483647), coalesce(t.longitude_e7, 2147483647),
                  coalesce(t.odometer_hm, 4294967295), coalesce(t.speed_dkmh, 65535), coalesce(t.heading_cdeg, 65535),
                  coalesce(t.pack_voltage_dv, 65535), coalesce(t.pack_current_da, -32768), coalesce(t.soc, 255),
                  coalesce(t.max_cell_temp, -128), coalesce(t.min_cell_temp, -128), coalesce(t.max_alarm_level, 255),
                  t.status, coalesce(t.aux_battery_cv, 65535), t.alarm_flags, coalesce(t.remaining_range_km, 65535)
                FROM chunks c JOIN telemetry t
                  ON t.rowid BETWEEN c.first_rowid AND c.first_rowid + c.row_count - 1
                WHERE c.vehicle_id = ?1 AND c.t_min < ?3 AND c.t_max >= ?2
                  AND t.ts >= ?2 AND t.ts < ?3
                """)
            stmt.bind(1, vehicleID)
            stmt.bind(2, fromMs)
            stmt.bind(3, toMs)
            while try stmt.step() {
                let ts = stmt.int64(0)
                if let last = points.last, last.timestampMs > ts { sorted = false }
                points.append(TrackPoint(row: stmt, timestampMs: ts))
            }
        }
        if !sorted { points.sort { $0.timestampMs < $1.timestampMs } }
        if points.count > limit { points.removeLast(points.count - limit) }
        return points
    }

    /// A read-only connection with memory-mapped reads (no copy per page from the OS cache). It waits up
    /// to 2 s for a lock: the writer's TRUNCATE checkpoints (after an erasure, or a WAL grown too large)
    /// hold new readers back for a moment.
    static func openReadOnly(_ path: String) throws(StoreError) -> SQLiteConnection {
        let db = try SQLiteConnection(path: path, readOnly: true)
        sqlite3_busy_timeout(db.handle, 2000)
        try db.exec("PRAGMA mmap_size=268435456")
        return db
    }

    /// Every file of the region with its size, rows and time range.
    public func inventory() throws(StoreError) -> [ShardFile] {
        var files: [ShardFile] = []
        let registryPath = "\(directory)/\(StoreFiles.registryFileName)"
        if StoreFiles.exists(registryPath) {
            let db = try openRegistry()
            files.append(
                ShardFile(
                    name: StoreFiles.registryFileName, kind: "registry",
                    schemaVersion: Int(try db.scalar("PRAGMA user_version") ?? 0),
                    bytes: StoreFiles.size(registryPath) + StoreFiles.size(registryPath + "-wal"),
                    rows: Int(try db.scalar("SELECT count(*) FROM vehicles") ?? 0)))
        }
        for day in partitionDays() {
            let path = "\(directory)/\(day.partitionFileName)"
            let db = try Self.openReadOnly(path)
            try StoreSchema.checkMeta(db, kind: .telemetry, region: region)
            // Rows = sum of chunk sizes (no full scan); time range from the chunks too.
            let stmt = try db.prepare("SELECT coalesce(sum(row_count), 0), min(t_min), max(t_max) FROM chunks")
            _ = try stmt.step()
            files.append(
                ShardFile(
                    name: day.partitionFileName, kind: "telemetry",
                    schemaVersion: Int(try db.scalar("PRAGMA user_version") ?? 0),
                    bytes: StoreFiles.size(path) + StoreFiles.size(path + "-wal"), rows: Int(stmt.int64(0)),
                    partitionStartMs: day.startMs, partitionEndMs: day.endMs, firstRecordMs: stmt.optionalInt64(1),
                    lastRecordMs: stmt.optionalInt64(2)))
        }
        return files
    }
}

extension TrackPoint {
    /// A point from a track query row whose NULLs were turned into "not available" sentinels.
    @inline(__always)
    init(row s: SQLiteStatement, timestampMs: Int64) {
        typealias NA = TelemetryRecord.NotAvailable
        @inline(__always) func value<T: FixedWidthInteger>(_ column: Int32, _ missing: T) -> T? {
            let v = T(truncatingIfNeeded: s.int64(column))
            return v == missing ? nil : v
        }
        self.init(
            timestampMs: timestampMs, latitudeE7: value(1, NA.coordinate), longitudeE7: value(2, NA.coordinate),
            odometerHm: value(3, NA.u32), speedDkmh: value(4, NA.u16), headingCdeg: value(5, NA.u16),
            packVoltageDv: value(6, NA.u16), packCurrentDa: value(7, NA.current), soc: value(8, NA.u8),
            maxCellTemp: value(9, NA.temperature), minCellTemp: value(10, NA.temperature),
            maxAlarmLevel: value(11, NA.u8), status: UInt16(truncatingIfNeeded: s.int64(12)),
            auxBatteryCv: value(13, NA.u16), alarmFlags: UInt32(truncatingIfNeeded: s.int64(14)),
            remainingRangeKm: value(15, NA.u16))
    }
}

extension ShardReader {
    /// Whether the region holds anything of `vin`: a registry row, or a row in a day file's `vehicles`
    /// table (each day file is opened read-only; a vehicle the registry lost after a crash is found too).
    public func holds(_ vin: VIN) throws(StoreError) -> Bool {
        let registryPath = "\(directory)/\(StoreFiles.registryFileName)"
        if StoreFiles.exists(registryPath) {
            let db = try openRegistry()
            let find = try db.prepare("SELECT 1 FROM vehicles WHERE vin = ?1")
            find.bind(1, vin.description)
            if try find.step() { return true }
        }
        for day in partitionDays() {
            let db = try Self.openReadOnly("\(directory)/\(day.partitionFileName)")
            let find = try db.prepare("SELECT 1 FROM vehicles WHERE vin = ?1")
            find.bind(1, vin.description)
            if try find.step() { return true }
        }
        return false
    }
}
