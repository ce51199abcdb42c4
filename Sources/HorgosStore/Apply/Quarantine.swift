import Foundation
import HorgosWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Moves a region's damaged SQLite files aside so the region goes on with fresh ones.
///
/// A file that fails `PRAGMA quick_check` (or is not a database at all) is renamed, with its -wal and
/// -shm files, to `<name>.quarantined-<ms since epoch>` in the same directory: its earlier rows stay
/// there for `horgosctl` to salvage, and the applier replays the journal entries it had not applied
/// into a new file of the same name. Listed by `ShardReader.quarantinedFiles()` (`horgosctl shards`).
enum Quarantine {
    static let marker = ".quarantined-"

    /// The files moved (their new names).
    static func moveDamagedFiles(
        directory: String, region: Region, nowMs: Int64, log: @Sendable (StoreLogLevel, String) -> Void
    ) -> [String] {
        var names: [String] = []
        if StoreFiles.exists("\(directory)/\(StoreFiles.registryFileName)") {
            names.append(StoreFiles.registryFileName)
        }
        names += StoreFiles.partitionDays(in: directory).map(\.partitionFileName)
        var moved: [String] = []
        for name in names where !isHealthy("\(directory)/\(name)") {
            let target = "\(name)\(marker)\(nowMs)"
            for suffix in ["", "-wal", "-shm"] where StoreFiles.exists("\(directory)/\(name)\(suffix)") {
                rename("\(directory)/\(name)\(suffix)", "\(directory)/\(target)\(suffix)")
            }
            log(
                .error,
                "\(region): \(name) is damaged; quarantined as \(target) (its earlier rows stay there for "
                    + "salvage, the region goes on with a new file; see Deploy/RUNBOOK.md 'A region is quarantined')")
            moved.append(target)
        }
        return moved
    }

    static func isHealthy(_ path: String) -> Bool {
        do throws(StoreError) {
            let db = try SQLiteConnection(path: path, readOnly: true)
            let stmt = try db.prepare("PRAGMA quick_check")
            var messages: [String] = []
            while try stmt.step() { messages.append(stmt.text(0)) }
            return messages == ["ok"]
        } catch {
            // Only damage counts: a file that is locked or unreadable for another reason stays.
            return !(error.fault == .corrupt)
        }
    }
}
