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
/// there for `horgosctl shards salvage`, and the applier goes on with a new file of the same name
/// (replaying the journal entries it had not applied). Listed by `ShardReader.quarantinedFiles()`
/// (`horgosctl shards`); reported on `/health/CC` until an operator acknowledges them
/// (`QuarantineAcknowledgement`).
enum Quarantine {
    static let marker = ".quarantined-"

    /// Checks `names` (files of the region directory) and moves the damaged ones; returns their new names.
    static func moveDamagedFiles(
        directory: String, names: [String], region: Region, nowMs: Int64,
        log: @Sendable (StoreLogLevel, String) -> Void
    ) -> [String] {
        names.filter { StoreFiles.exists("\(directory)/\($0)") && !isHealthy("\(directory)/\($0)") }.map { name in
            move(name, directory: directory, region: region, nowMs: nowMs, log: log)
        }
    }

    /// Moves one file (with its -wal and -shm) aside; returns its new name.
    static func move(
        _ name: String, directory: String, region: Region, nowMs: Int64,
        log: @Sendable (StoreLogLevel, String) -> Void
    ) -> String {
        var target = "\(name)\(marker)\(nowMs)"
        var stamp = nowMs
        while StoreFiles.exists("\(directory)/\(target)") {
            stamp += 1
            target = "\(name)\(marker)\(stamp)"
        }
        for suffix in ["", "-wal", "-shm"] where StoreFiles.exists("\(directory)/\(name)\(suffix)") {
            rename("\(directory)/\(name)\(suffix)", "\(directory)/\(target)\(suffix)")
        }
        log(
            .error,
            "\(region): \(name) is damaged; quarantined as \(target) (its earlier rows stay there for "
                + "`horgosctl shards salvage`, the region goes on with a new file; see Deploy/RUNBOOK.md "
                + "'A region is quarantined')")
        return target
    }

    static func isHealthy(_ path: String) -> Bool {
        check(path) != .damaged
    }

    /// What a `PRAGMA quick_check` on a separate read-only connection said.
    enum Verdict: Sendable, Hashable {
        case ok
        case damaged
        /// The check could not run (locked, unreadable for another reason): not counted as damage.
        case unknown
    }

    static func check(_ path: String) -> Verdict {
        do throws(StoreError) {
            let db = try SQLiteConnection(path: path, readOnly: true)
            let stmt = try db.prepare("PRAGMA quick_check")
            var messages: [String] = []
            while try stmt.step() { messages.append(stmt.text(0)) }
            return messages == ["ok"] ? .ok : .damaged
        } catch {
            // Only damage counts: a file that is locked or unreadable for another reason stays.
            return error.fault == .corrupt ? .damaged : .unknown
        }
    }
}

/// `<state>/<CC>/quarantine.acknowledged`: the time (ms since the epoch) up to which an operator
/// acknowledged the region's quarantined files. A quarantined file newer than it keeps `/health/CC`
/// reporting the quarantine and the `horgos_region_quarantine_unacknowledged` gauge above 0.
enum QuarantineAcknowledgement {
    static let fileName = "quarantine.acknowledged"

    static func read(directory: String) -> Int64 {
        guard let text = try? String(contentsOfFile: "\(directory)/\(fileName)", encoding: .utf8) else { return 0 }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    static func write(directory: String, upToMs: Int64) throws(StoreError) {
        let path = "\(directory)/\(fileName)"
        do {
            try Data("\(upToMs)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw StoreError(.fileSystem, message: "\(error)", context: "write \(path)")
        }
    }

    /// Quarantined files of a region directory newer than its acknowledgement, oldest first.
    static func unacknowledged(directory: String) -> [String] {
        let acknowledged = read(directory: directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { name in
            guard !name.hasSuffix("-wal") && !name.hasSuffix("-shm"),
                let range = name.range(of: Quarantine.marker), let ms = Int64(name[range.upperBound...])
            else { return false }
            return ms > acknowledged
        }.sorted { quarantinedAt($0) < quarantinedAt($1) }
    }

    static func quarantinedAt(_ name: String) -> Int64 {
        guard let range = name.range(of: Quarantine.marker) else { return 0 }
        return Int64(name[range.upperBound...]) ?? 0
    }
}
