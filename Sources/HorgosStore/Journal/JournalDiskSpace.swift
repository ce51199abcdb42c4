import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `<state>/journal/reserve`: space the node keeps allocated so that it can still start, open its
/// shards and checkpoint them when the file system is full, released when it needs it.
///
/// The file holds `bytes` allocated blocks (`posix_fallocate`, which writes them on file systems
/// without `fallocate`). The journal releases it when a journal write fails with ENOSPC (the appliers
/// can then apply and checkpoint what was acknowledged, and the checkpoint lets old segments go) and
/// at a start that finds less than `bytes` free; it takes it again, before writing anything more,
/// once twice its size is free. Not thread-safe: the journal's writer (and its `init`) own it.
struct JournalReserve {
    let path: String
    let bytes: Int

    init(directory: String, bytes: Int) {
        path = "\(directory)/reserve"
        self.bytes = max(0, bytes)
    }

    /// Whether the reserve is held in full.
    var isHeld: Bool { bytes == 0 || StoreFiles.size(path) >= Int64(bytes) }

    /// Allocates the reserve; false (and nothing left behind) when the space is not there.
    mutating func take() -> Bool {
        guard bytes > 0 else { return true }
        if isHeld { return true }
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return false }
        let rc = posix_fallocate(fd, 0, off_t(bytes))
        let synced = rc == 0 && fsync(fd) == 0
        close(fd)
        if !synced { unlink(path) }
        return synced
    }

    /// Gives the reserve back to the file system; returns the bytes freed.
    @discardableResult
    mutating func release() -> Int {
        let held = Int(StoreFiles.size(path))
        guard held > 0 || StoreFiles.exists(path) else { return 0 }
        unlink(path)
        return held
    }
}

/// Free-space and error helpers of the journal's disk-full state.
enum JournalDiskSpace {
    /// Bytes an unprivileged process may still allocate on the file system holding `path` (nil when
    /// `statvfs` fails).
    static func availableBytes(_ path: String) -> Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Whether `code` means the file system (or a quota) is out of space.
    static func isOutOfSpace(_ code: Int32) -> Bool { code == ENOSPC || code == EDQUOT }
}

/// `<state>/journal/high-water` (layout in `JournalFormat`): the newest segment ever created and the
/// highest LSN it can hold, written in place and fsynced before that segment gets its first entry.
enum JournalHighWater {
    static let fileName = "high-water"

    static func read(directory: String) -> (segmentFirstLSN: UInt64, lsnLimit: UInt64)? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(fileName)") else { return nil }
        return JournalFormat.decodeHighWater(Array(data))
    }

    /// Rewrites the record in place (the file keeps its one block, so a full disk does not stop it)
    /// and makes it durable. Throws `.diskFull` when it cannot be written for lack of space.
    static func write(directory: String, segmentFirstLSN: UInt64, lsnLimit: UInt64) throws(StoreError) {
        let path = "\(directory)/\(fileName)"
        let created = !StoreFiles.exists(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JournalDiskSpace.error(errno, context: "open \(path)") }
        defer { close(fd) }
        let record = JournalFormat.highWaterRecord(segmentFirstLSN: segmentFirstLSN, lsnLimit: lsnLimit)
        let written = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == record.count else { throw JournalDiskSpace.error(errno, context: "write \(path)") }
        guard fdatasync(fd) == 0 else { throw JournalDiskSpace.error(errno, context: "fdatasync \(path)") }
        if created { try Journal.syncDirectory(directory) }
    }
}

extension JournalDiskSpace {
    /// A store error for a failed file-system call: `.diskFull` for ENOSPC/EDQUOT, `.fileSystem` else.
    static func error(_ code: Int32, context: String) -> StoreError {
        StoreError(
            isOutOfSpace(code) ? .diskFull : .fileSystem, message: String(cString: strerror(code)),
            context: context)
    }
}

/// `<state>/journal/lock`: an exclusive `flock` held by the process that owns the journal (the daemon's
/// store, or `horgosctl journal salvage`), so a second one on the same state directory stops with a
/// clear error instead of fighting over the files. The kernel drops it when the process dies.
final class JournalLock: Sendable {
    private let fd: Int32
    private let released = Atomic<Bool>(false)

    /// Takes the lock; throws `.inUse` when another process holds it. A file system too full to create
    /// the lock file (no inode left) does not stop a start: the lock is then skipped.
    init(directory: String) throws(StoreError) {
        let path = "\(directory)/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        if fd < 0 && JournalDiskSpace.isOutOfSpace(errno) {
            self.fd = -1
            return
        }
        guard fd >= 0 else { throw JournalDiskSpace.error(errno, context: "open \(path)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(
                .inUse,
                message: "another process holds \(path): horgosd (or horgosctl journal salvage) is running on "
                    + "this state directory; one process per state directory (stop it first)",
                context: "lock \(path)")
        }
        self.fd = fd
    }

    /// Releases the lock (also released when the process exits).
    func release() {
        if fd >= 0 && !released.exchange(true, ordering: .relaxed) { close(fd) }
    }

    deinit { release() }
}
