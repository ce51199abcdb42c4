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
    /// `<state>/journal/applied`: the same layout, per region the LSN up to which every entry of the
    /// region is applied (committed, not necessarily fsynced), rewritten about once a second without
    /// fsync. Trusted only in the boot that wrote it: a start after a daemon crash skips what it says
    /// is applied (a region without traffic never commits, so its registry's applied LSN alone
    /// would make every start re-read the whole journal).
    static let appliedFileName = "applied"

    struct Contents {
        var boot: String?
        var lsns: [Region: UInt64] = [:]
        /// Whether the file was written during the current boot.
        var sameBoot: Bool { boot != nil && boot == DurableLSNFile.currentBootID }

        /// The LSN after which `region`'s replay starts, given the applied LSN its registry holds: in
        /// the same boot both the applied LSN (its WAL survived in the page cache) and the durable LSN
        /// here are in the shards, so the larger (a region without traffic never commits, but its
        /// durable LSN moves with the journal); after a reboot only what was fsynced, the smaller.
        /// What `applied` (written in this boot, so its commits are in the page cache) says is applied
        /// is skipped too.
        func replayAfter(_ region: Region, applied: UInt64) -> UInt64 {
            let shards = sameBoot ? max(applied, lsns[region] ?? 0) : min(applied, lsns[region] ?? 0)
            return max(shards, appliedLSNs[region] ?? 0)
        }

        /// What `applied` said, when it was written in the current boot (empty otherwise).
        var appliedLSNs: [Region: UInt64] = [:]
    }

    /// The kernel's boot id (Linux); nil elsewhere (every start is then treated as after a reboot).
    static let currentBootID: String? = {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else {
            return nil
        }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }()

    /// The durable LSNs, and the applied ones of `applied` when both were written in the current boot.
    static func read(directory: String) -> Contents {
        var contents = read(directory: directory, name: fileName)
        let applied = read(directory: directory, name: appliedFileName)
        if applied.sameBoot { contents.appliedLSNs = applied.lsns }
        return contents
    }

    private static func read(directory: String, name: String) -> Contents {
        var contents = Contents()
        guard let text = try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8) else {
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

    /// Replaces `durable` (or, with `name: appliedFileName, sync: false`, `applied` without an fsync).
    static func write(
        directory: String, lsns: [Region: UInt64], name: String = fileName, sync: Bool = true
    ) throws(StoreError) {
        var text = "boot \(currentBootID ?? "unknown")\n"
        for region in lsns.keys.sorted() { text += "\(region.code) \(lsns[region]!)\n" }
        let path = "\(directory)/\(name)"
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "create \(temporary)")
        }
        let bytes = Array(text.utf8)
        let ok = bytes.withUnsafeBytes { JournalSegment.writeFully(fd, $0) } && (!sync || fsync(fd) == 0)
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "write \(path)")
        }
        if sync { try Journal.syncDirectory(directory) }
    }
}
