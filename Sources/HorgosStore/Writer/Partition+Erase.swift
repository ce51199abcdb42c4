import HorgosWire

extension Partition {
    /// Deletes every row of `vin` from this day file inside the running transaction (the caller began
    /// it): its telemetry rows (found through its chunks, no scan of other vehicles' rows), chunks,
    /// events and their DTCs, the GB/T 32960 tables present, and its `vehicles` row. Returns the rows
    /// removed per table; empty when the file never held the vehicle.
    ///
    /// The connection runs with `secure_delete`, so deleted cells and freed pages are zeroed; the caller
    /// truncates the WAL after the commit, so no older page image keeps the bytes either.
    func erase(_ vin: VIN) throws(StoreError) -> [String: Int] {
        let find = try db.prepare("SELECT id FROM vehicles WHERE vin = ?1")
        find.bind(1, vin.description)
        var ids: [Int64] = []
        while try find.step() { ids.append(find.int64(0)) }
        find.reset()
        guard !ids.isEmpty else { return [:] }
        var statements: [(table: String, sql: String)] = [
            (
                "telemetry",
                """
                DELETE FROM telemetry WHERE rowid IN (
                  SELECT t.rowid FROM chunks c JOIN telemetry t
                    ON t.rowid BETWEEN c.first_rowid AND c.first_rowid + c.row_count - 1
                  WHERE c.vehicle_id = ?1 AND t.vehicle_id = ?1)
                """
            ),
            ("chunks", "DELETE FROM chunks WHERE vehicle_id = ?1"),
            ("event_dtcs", "DELETE FROM event_dtcs WHERE event_id IN (SELECT id FROM events WHERE vehicle_id = ?1)"),
            ("events", "DELETE FROM events WHERE vehicle_id = ?1"),
        ]
        let tables = try db.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'gbt\\_%' ESCAPE '\\' ORDER BY name")
        while try tables.step() {
            let table = tables.text(0)
            statements.append((table, "DELETE FROM \(table) WHERE vehicle_id = ?1"))
        }
        var removed: [String: Int] = [:]
        for id in ids {
            for (table, sql) in statements {
                let delete = try db.prepare(sql)
                delete.bind(1, id)
                try delete.run()
                if db.changes > 0 { removed[table, default: 0] += Int(db.changes) }
            }
            knownVehicles.remove(id)
        }
        let forget = try db.prepare("DELETE FROM vehicles WHERE id = ?1")
        for id in ids {
            forget.bind(1, id)
            try forget.run()
        }
        removed["vehicles"] = ids.count
        return removed
    }
}
