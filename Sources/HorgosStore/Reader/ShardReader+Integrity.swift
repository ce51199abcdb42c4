import Foundation

extension ShardReader {
    /// Whether the region has a directory at all (nothing was ever stored for it when false).
    public var hasData: Bool { StoreFiles.exists(directory) }

    /// `PRAGMA integrity_check` (or `quick_check`) of every file of the region, one report per file
    /// even when a file cannot be opened or is not a database at all: that file is reported as failed
    /// with SQLite's message and the check goes on. Reports come registry first, then partitions
    /// oldest first.
    public func integrityCheck(quick: Bool = false) -> [IntegrityReport] {
        var names: [String] = []
        if StoreFiles.exists("\(directory)/\(StoreFiles.registryFileName)") {
            names.append(StoreFiles.registryFileName)
        }
        names += partitionDays().map(\.partitionFileName)
        return names.map { name in
            var messages: [String] = []
            do throws(StoreError) {
                let db = try SQLiteConnection(path: "\(directory)/\(name)", readOnly: true)
                let stmt = try db.prepare(quick ? "PRAGMA quick_check" : "PRAGMA integrity_check")
                while try stmt.step() { messages.append(stmt.text(0)) }
            } catch {
                messages.append(error.description)
            }
            return IntegrityReport(name: name, ok: messages == ["ok"], messages: messages)
        }
    }

    /// Files the daemon quarantined (moved aside as damaged: `<name>.quarantined-<ms since epoch>`),
    /// with their sizes; their rows can be salvaged with `sqlite3 <file> .recover`.
    public func quarantinedFiles() throws(StoreError) -> [QuarantinedFile] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.contains(Quarantine.marker) && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
            .sorted()
            .map { name in
                let path = "\(directory)/\(name)"
                let parts = name.components(separatedBy: Quarantine.marker)
                return QuarantinedFile(
                    name: name, originalName: parts[0], quarantinedAtMs: parts.count > 1 ? Int64(parts[1]) : nil,
                    bytes: StoreFiles.size(path) + StoreFiles.size(path + "-wal"))
            }
    }
}
