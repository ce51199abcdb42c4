import Foundation
import HorgosWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `<state>/journal/durable`: per region, the LSN up to which every entry of that region is durable
/// in its shard files (applied, then checkpointed and fsynced), and the boot it was written in.
///
/// Text, one `key value` pair a line: `boot <kernel boot id>`, then `<CC> <LSN>` per region.
/// Replaced atomically (temporary file, fsync, rename, directory fsync). Journal segments are deleted
/// only below the smallest of these LSNs. At start, when the boot id is the current one (the daemon
/// crashed but the machine did not), a region replays from the applied LSN in its registry's `meta`
/// (its SQLite WAL survived in the page cache); after a reboot it replays from the LSN here, because
/// shard commits since the last checkpoint (`synchronous=NORMAL`) may be gone.
enum DurableLSNFile {
    static let fileName = "durable"

    struct Contents {
        var boot: String?
        var lsns: [Region: UInt64] = [:]
        /// Whether the file was written during the current boot.
        var sameBoot: Bool { boot != nil && boot == DurableLSNFile.currentBootID }
    }

    /// The kernel's boot id (Linux); nil elsewhere (every start is then treated as after a reboot).
    static let currentBootID: String? = {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else {
            return nil
        }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }()

    static func read(directory: String) -> Contents {
        var contents = Contents()
        guard let text = try? String(contentsOfFile: "\(directory)/\(fileName)", encoding: .utf8) else {
            return contents
        }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2 else { continue }
            if fields[0] == "boot" {
                contents.boot = String(fields[1])
            } else if let region = Region(String(fields[0])), let lsn = UInt64(fields[1]) {
                contents.lsns[region] = lsn
            }
        }
        return contents
    }

    static func write(directory: String, lsns: [Region: UInt64]) throws(StoreError) {
        var text = "boot \(currentBootID ?? "unknown")\n"
        for region in lsns.keys.sorted() { text += "\(region.code) \(lsns[region]!)\n" }
        let path = "\(directory)/\(fileName)"
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "create \(temporary)")
        }
        let bytes = Array(text.utf8)
        let ok = bytes.withUnsafeBytes { JournalSegment.writeFully(fd, $0) } && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "write \(path)")
        }
        try Journal.syncDirectory(directory)
    }
}
