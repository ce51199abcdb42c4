import Foundation
import HorgosWire

#if canImport(Glibc)
    import Glibc
#endif

/// Online backups of a region's shard files, file by file, while the daemon writes them.
///
/// Each file is copied with `VACUUM INTO` from a read-only connection: one read transaction, so the
/// copy is a consistent snapshot of that file as of its start (WAL readers never block the writer,
/// and the writer never blocks them). Files are copied one after another, so the registry may be a
/// few commits older or newer than a partition; the partitions are the truth, and the registry is
/// rebuilt from them at open when it lags. The copy is written to `<name>.partial` and renamed, so a
/// backup directory never holds a half-written shard under its real name.
public enum ShardBackup {
    /// One shard file of a region.
    public struct ShardFile: Sendable, Hashable {
        /// File name inside the region directory (`registry.sqlite`, `telemetry-2026-12-03.sqlite`).
        public var name: String
        /// The UTC day of a telemetry partition; nil for the registry.
        public var day: UTCDay?
    }

    /// What one copied file holds.
    public struct CopiedFile: Sendable, Hashable {
        /// Bytes of the copy.
        public var bytes: Int64
        /// The file's `meta` table (kind, region, partition range, and an applied journal position
        /// where the store keeps one).
        public var meta: [String: String]
    }

    /// The registry and every telemetry partition of `region` under `stateDirectory`, oldest day first.
    public static func files(stateDirectory: String, region: Region) -> [ShardFile] {
        let directory = StoreFiles.regionDirectory(stateDirectory, region)
        var files: [ShardFile] = []
        if StoreFiles.exists("\(directory)/\(StoreFiles.registryFileName)") {
            files.append(ShardFile(name: StoreFiles.registryFileName, day: nil))
        }
        for day in StoreFiles.partitionDays(in: directory) {
            files.append(ShardFile(name: day.partitionFileName, day: day))
        }
        return files
    }

    /// Copies one shard file of `region` into `destination/<CC>/<name>` as a consistent snapshot.
    public static func copy(
        stateDirectory: String, region: Region, file: String, to destination: String
    ) throws(StoreError) -> CopiedFile {
        let source = "\(StoreFiles.regionDirectory(stateDirectory, region))/\(file)"
        let targetDirectory = StoreFiles.regionDirectory(destination, region)
        try StoreFiles.createDirectory(targetDirectory)
        let output = "\(targetDirectory)/\(file)"
        let partial = output + ".partial"
        if StoreFiles.exists(partial) { try StoreFiles.deleteDatabase(partial) }
        let db = try SQLiteConnection(path: source, readOnly: true)
        let escaped = partial.replacingOccurrences(of: "'", with: "''")
        try db.exec("VACUUM INTO '\(escaped)'")
        let meta = try readMeta(db)
        guard rename(partial, output) == 0 else {
            throw StoreError(.fileSystem, message: "cannot rename the backup copy into place", context: output)
        }
        return CopiedFile(bytes: StoreFiles.size(output), meta: meta)
    }

    /// `PRAGMA quick_check` of a copied or restored file: true when SQLite finds it sound.
    public static func isSound(path: String) throws(StoreError) -> Bool {
        let db = try SQLiteConnection(path: path, readOnly: true)
        let statement = try db.prepare("PRAGMA quick_check")
        guard try statement.step() else { return false }
        return statement.text(0) == "ok"
    }

    /// The `meta` table of a shard file opened read-only.
    public static func meta(path: String) throws(StoreError) -> [String: String] {
        try readMeta(try SQLiteConnection(path: path, readOnly: true))
    }

    private static func readMeta(_ db: SQLiteConnection) throws(StoreError) -> [String: String] {
        let statement = try db.prepare("SELECT key, value FROM meta")
        var meta: [String: String] = [:]
        while try statement.step() { meta[statement.text(0)] = statement.text(1) }
        return meta
    }
}
