import CSQLite
import Dispatch
import Foundation
import HorgosGBT32960
import HorgosStore
import HorgosWire

/// Part (g): GB/T 32960 realtime frames (~295 bytes: every 2016 type, 64 cells, 16 probes) through
/// the real writer of one region, beside the same number of native 1-record frames; then the
/// layout choice for the cell list: one BLOB row per subsystem (what the store does) against one
/// row per cell, as bare SQLite loops with the store's pragmas.
func gbt32960Part(root: String, frames count: Int, vehicles: Int) throws {
    let region = Region("AE")!
    let start = StoreClock.systemMs() - 3_600_000
    let offset = GBT32960Format.beijingUTCOffsetSeconds
    let entries: [[UInt8]] = (0..<count).map { index in
        let vehicle = index % vehicles
        let seconds = (start / 1000) + Int64(index / vehicles)
        let values = GBT32960RealtimeValues.typical(
            seed: index, time: GBT32960Time(epochSeconds: seconds, utcOffsetSeconds: offset))
        var frame: [UInt8] = []
        GBT32960Encoder.appendFrame(command: .realtime, vin: GBT32960VINField(vin(vehicle)), to: &frame) {
            values.appendDataUnit(to: &$0)
        }
        return frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: offset) }
    }
    let natives: [[UInt8]] = (0..<count).map { index in
        payload(vehicle: index % vehicles, baseMs: start + Int64(index / vehicles) * 1000, count: 1, stepMs: 1000)
    }
    for (name, list) in [("GB/T 32960 frames", entries), ("native 1-record frames", natives)] {
        let dir = "\(root)/gbt32960-\(name.hasPrefix("GB") ? "gbt" : "native")"
        let store = try ShardStore(configuration: StoreConfiguration(stateDirectory: dir, regions: [region], durability: .disk))
        let writer = store.writers[region]!
        let window = DispatchSemaphore(value: 4096)
        let cpuStarted = processCPU()
        let started = monotonic()
        for bytes in list {
            window.wait()
            let completion: @Sendable (CommitOutcome) -> Void = { _ in window.signal() }
            if name.hasPrefix("GB") {
                try writer.submitGBT32960(bytes, completion: completion)
            } else {
                try writer.submitTelemetry(bytes, completion: completion)
            }
        }
        for _ in 0..<4096 { window.wait() }
        for _ in 0..<4096 { window.signal() }  // libdispatch traps on a semaphore freed below its start value
        let elapsed = monotonic() - started
        let cpu = processCPU() - cpuStarted
        store.stop()
        let size = directorySize(dir)
        print(
            String(
                format: "(g) %@: %d frames from %d vehicles in %.2f s = %.0f frames/s, %.1f us CPU per frame, "
                    + "%.0f bytes on disk per frame",
                name, list.count, vehicles, elapsed, Double(list.count) / elapsed, cpu * 1e6 / Double(list.count),
                Double(size) / Double(list.count)))
        try? FileManager.default.removeItem(atPath: dir)
    }
    // The cell-list layout: per frame, 64 cell voltages of one subsystem.
    for perCell in [false, true] {
        let path = "\(root)/gbt32960-cells-\(perCell ? "rows" : "blob").sqlite"
        var db: OpaquePointer?
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-8192;", nil, nil, nil)
        let ddl =
            perCell
            ? "CREATE TABLE c(vehicle_id INTEGER, ts INTEGER, subsystem INTEGER, cell INTEGER, mv INTEGER, "
                + "PRIMARY KEY(vehicle_id, ts, subsystem, cell)) WITHOUT ROWID"
            : "CREATE TABLE c(vehicle_id INTEGER, ts INTEGER, subsystem INTEGER, first_cell INTEGER, cells BLOB, "
                + "PRIMARY KEY(vehicle_id, ts, subsystem, first_cell)) WITHOUT ROWID"
        sqlite3_exec(db, ddl, nil, nil, nil)
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, perCell ? "INSERT INTO c VALUES (?1,?2,1,?3,?4)" : "INSERT INTO c VALUES (?1,?2,1,1,?3)", -1, &stmt, nil)
        let cells = [UInt8](repeating: 0x0F, count: 128)
        let started = monotonic()
        sqlite3_exec(db, "BEGIN", nil, nil, nil)
        for index in 0..<count {
            sqlite3_bind_int64(stmt, 1, Int64(index % vehicles))
            sqlite3_bind_int64(stmt, 2, start + Int64(index / vehicles) * 1000)
            if perCell {
                for cell in 0..<64 {
                    sqlite3_bind_int64(stmt, 3, Int64(cell))
                    sqlite3_bind_int64(stmt, 4, Int64(3_900 + cell))
                    sqlite3_step(stmt)
                    sqlite3_reset(stmt)
                }
            } else {
                cells.withUnsafeBytes { _ = sqlite3_bind_blob(stmt, 3, $0.baseAddress, 128, nil) }
                sqlite3_step(stmt)
                sqlite3_reset(stmt)
            }
            if index % 2_000 == 1_999 { sqlite3_exec(db, "COMMIT; BEGIN", nil, nil, nil) }
        }
        sqlite3_exec(db, "COMMIT", nil, nil, nil)
        let elapsed = monotonic() - started
        sqlite3_finalize(stmt)
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nil, nil, nil)
        sqlite3_close(db)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print(
            String(
                format: "(g) cell list as %@: %.0f frames/s (64 cells each), %.0f bytes per frame",
                perCell ? "one row per cell" : "one BLOB row per subsystem", Double(count) / elapsed,
                Double(size) / Double(count)))
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}
