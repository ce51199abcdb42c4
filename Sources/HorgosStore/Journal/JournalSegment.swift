import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One journal segment file, mapped read-only for the appliers (the page cache is their buffer: an
/// acknowledged entry is never held twice in memory) and, for the newest, open for appending.
///
/// The mapping reserves `capacity` bytes of address space; only bytes already written are ever read
/// (past the end of the file a read would fault). The segment lives while any unapplied entry
/// refers to it; a deleted file stays readable through the mapping until then.
final class JournalSegment: Sendable {
    let path: String
    let firstLSN: UInt64
    /// Read-only mapping of the file.
    nonisolated(unsafe) let base: UnsafeRawPointer
    let capacity: Int
    /// Bytes written (header included); only the journal writer moves it.
    let size: Atomic<Int>
    /// LSN of the last entry written (firstLSN - 1 while empty).
    let lastLSN: Atomic<UInt64>
    /// File descriptor for appending, -1 for a segment opened read-only at recovery.
    let fd: Int32

    private init(path: String, firstLSN: UInt64, base: UnsafeRawPointer, capacity: Int, size: Int, fd: Int32) {
        self.path = path
        self.firstLSN = firstLSN
        self.base = base
        self.capacity = capacity
        self.size = Atomic(size)
        self.lastLSN = Atomic(firstLSN &- 1)
        self.fd = fd
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), capacity)
        if fd >= 0 { close(fd) }
    }

    /// The bytes `offset ..< offset + count` (already written).
    @inline(__always) func bytes(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    private static func map(_ fd: Int32, capacity: Int, path: String) throws(StoreError) -> UnsafeRawPointer {
        guard let pointer = mmap(nil, capacity, PROT_READ, MAP_SHARED, fd, 0), pointer != MAP_FAILED else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "map \(path)")
        }
        return UnsafeRawPointer(pointer)
    }

    /// Creates a new, empty segment (header written, not yet synced) for appending. A failure leaves no
    /// file behind; ENOSPC/EDQUOT throw `.diskFull`.
    static func create(
        directory: String, firstLSN: UInt64, capacity: Int, flags: UInt32 = 0
    ) throws(StoreError) -> JournalSegment {
        let path = "\(directory)/\(JournalFormat.segmentFileName(firstLSN: firstLSN))"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JournalDiskSpace.error(errno, context: "create \(path)") }
        let header = JournalFormat.segmentHeader(flags: flags)
        guard header.withUnsafeBytes({ writeFully(fd, $0) }) else {
            let code = errno
            close(fd)
            unlink(path)
            throw JournalDiskSpace.error(code, context: "write \(path)")
        }
        let readFD = open(path, O_RDONLY | O_CLOEXEC)
        defer { if readFD >= 0 { close(readFD) } }
        let base: UnsafeRawPointer
        do { base = try map(readFD, capacity: capacity, path: path) } catch {
            close(fd)
            unlink(path)
            throw error
        }
        return JournalSegment(
            path: path, firstLSN: firstLSN, base: base, capacity: capacity, size: header.count, fd: fd)
    }

    /// Cuts the file back to `size` bytes (what was written before a write that failed part-way) and
    /// moves the append offset there. False when the file system refused.
    func truncate(to size: Int) -> Bool {
        guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else { return false }
        return lseek(fd, off_t(size), SEEK_SET) == off_t(size)
    }

    /// Opens an existing segment read-only (recovery); `size` is its length on disk.
    static func openExisting(path: String, firstLSN: UInt64) throws(StoreError) -> JournalSegment {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "open \(path)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "stat \(path)")
        }
        let size = Int(info.st_size)
        let base = try map(fd, capacity: max(size, 1), path: path)
        return JournalSegment(path: path, firstLSN: firstLSN, base: base, capacity: max(size, 1), size: size, fd: -1)
    }

    /// Writes all of `bytes` at the end (the file offset is the end: only the writer appends).
    static func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}

/// One acknowledged journal entry waiting for its region's applier: where its bytes are and what the
/// applier needs without parsing them again.
struct JournalEntry: @unchecked Sendable {
    let segment: JournalSegment
    let lsn: UInt64
    let kind: UInt8
    let arrivalMs: Int64
    let payloadOffset: Int
    let payloadCount: Int
    /// Bytes of the whole entry (what `queuedBytes` counts).
    let entryBytes: Int
    /// Monotonic ns when it became durable (0 for entries found at recovery: apply at once).
    let durableNs: UInt64
    /// Copied from the stream by a follower (its context is a `FollowedOrigin`): nobody on this node
    /// waits for it, so an erasure it carries answers no local `submitErase`.
    var followed = false

    var payload: UnsafeRawBufferPointer { segment.bytes(payloadOffset, payloadCount) }
}
