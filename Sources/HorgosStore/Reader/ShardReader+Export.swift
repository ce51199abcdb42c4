import HorgosWire

/// One stored telemetry record of an export: the vehicle's VIN with the record's fields.
///
/// What `ShardReader.exportRows` hands to its callback, one at a time; nil fields were "not available".
public struct ExportRow: Sendable, Hashable {
    /// The vehicle's VIN, as stored in the partition's `vehicles` table.
    public var vin: String
    /// The record (device timestamp and fields).
    public var point: TrackPoint

    /// A row from its parts.
    public init(vin: String, point: TrackPoint) {
        self.vin = vin
        self.point = point
    }
}

extension ShardReader {
    /// Streams every stored record with `fromMs <= timestamp < toMs` to `body`, one row at a time.
    ///
    /// Partitions are read oldest day first; inside a partition rows come in arrival (rowid) order,
    /// which is time order per vehicle but interleaves vehicles. Memory stays constant whatever the
    /// range: one SQLite statement is stepped and one row is alive at a time (plus the partition's
    /// id-to-VIN map, one entry per vehicle). Each partition is read in its own read-only snapshot.
    /// A partition entirely inside the range is scanned without a per-row time test.
    ///
    /// - Returns: the number of rows passed to `body`.
    /// - Throws: `StoreError` for an unreadable or foreign file, or whatever `body` throws (which stops
    ///   the export).
    @discardableResult
    public func exportRows(fromMs: Int64, toMs: Int64, _ body: (ExportRow) throws -> Void) throws -> Int {
        var delivered = 0
        for day in partitionDays() where day.endMs > fromMs && day.startMs < toMs {
            let db = try Self.openReadOnly("\(directory)/\(day.partitionFileName)")
            try StoreSchema.checkMeta(db, kind: .telemetry, region: region)
            var vins: [Int64: String] = [:]
            let vehicles = try db.prepare("SELECT id, vin FROM vehicles")
            while try vehicles.step() { vins[vehicles.int64(0)] = vehicles.text(1) }
            let wholeDay = day.startMs >= fromMs && day.endMs <= toMs
            let stmt = try db.prepare(
                """
                SELECT ts, coalesce(latitude_e7, 2147483647), coalesce(longitude_e7, 2147483647),
                  coalesce(odometer_hm, 4294967295), coalesce(speed_dkmh, 65535), coalesce(heading_cdeg, 65535),
                  coalesce(pack_voltage_dv, 65535), coalesce(pack_current_da, -32768), coalesce(soc, 255),
                  coalesce(max_cell_temp, -128), coalesce(min_cell_temp, -128), coalesce(max_alarm_level, 255),
                  status, coalesce(aux_battery_cv, 65535), alarm_flags, coalesce(remaining_range_km, 65535),
                  vehicle_id
                FROM telemetry
                """ + (wholeDay ? "" : " WHERE ts >= ?1 AND ts < ?2"))
            if !wholeDay {
                stmt.bind(1, fromMs)
                stmt.bind(2, toMs)
            }
            while try stmt.step() {
                let vehicleID = stmt.int64(16)
                let point = TrackPoint(row: stmt, timestampMs: stmt.int64(0))
                try body(ExportRow(vin: vins[vehicleID] ?? "#\(vehicleID)", point: point))
                delivered += 1
            }
        }
        return delivered
    }
}
