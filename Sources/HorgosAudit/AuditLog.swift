import Crypto
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why an audit record could not be appended (the action it records must then not proceed, or must
/// report that it was not recorded).
public struct AuditError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, naming the file.
    public var message: String
    /// What the operator should do.
    public var remedy: String

    /// An error from its parts.
    public init(_ message: String, remedy: String) {
        self.message = message
        self.remedy = remedy
    }

    public var description: String { "\(message); \(remedy)" }
}

/// The tamper-evident log of operator actions: one JSON line per action, appended, fsync'd, each
/// record carrying the hash of the one before it (``AuditRecord``), plus an anchor file
/// (`<path>.head`: the last record's number and hash) that makes removing records from the end evident.
///
/// One call appends a record (``append(_:by:arguments:outcome:detail:)``); the daemon and `horgosctl`
/// (and later the commands issue) write the same file. Appends are serialized across processes with
/// `flock` on the log and within a process with a mutex; a record is durable when `append` returns
/// (log and anchor fsync'd). Each record is also handed to `notice` (the daemon's log at notice level,
/// the CLI's syslog), so the system journal holds a copy with its hash. `verify(path:)` finds a changed,
/// removed or reordered record and a truncated tail, and names it.
///
/// Limits: the chain proves the log's order and content against edits that do not recompute every later
/// hash and the anchor; someone able to rewrite the whole file and its anchor can forge a consistent log,
/// which the copies in the system journal then contradict. A record is at most 64 KiB.
public final class AuditLog: Sendable {
    /// The log file.
    public let path: String
    /// The anchor file: `{"hash":"…","seq":N}`, replaced atomically after each append.
    public var headPath: String { path + ".head" }
    private let notice: @Sendable (AuditRecord) -> Void
    private let clock: @Sendable () -> Int64
    private let lock = Mutex(())

    /// The largest record line accepted (arguments and detail are cut to fit).
    public static let maxRecordBytes = 64 << 10

    /// A log at `path` (created on the first append; its directory must exist). `notice` receives every
    /// appended record.
    public init(
        path: String, notice: @escaping @Sendable (AuditRecord) -> Void = { _ in },
        clock: @escaping @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    ) {
        self.path = path
        self.notice = notice
        self.clock = clock
    }

    /// Appends one record and makes it durable; returns it (with its number and hash).
    ///
    /// Refuses (``AuditError``) when the directory is missing or not writable, and when the log's end
    /// does not match its anchor (records were removed, or the last one is incomplete): appending then
    /// would hide the damage. `horgosctl audit --verify` names it; the RUNBOOK says how to go on.
    @discardableResult
    public func append(
        _ action: String, by actor: AuditOperator, arguments: [String: String] = [:], outcome: AuditOutcome,
        detail: String? = nil
    ) throws(AuditError) -> AuditRecord {
        let record = try lock.withLock { (_) throws(AuditError) -> AuditRecord in
            try appendLocked(action, actor: actor, arguments: arguments, outcome: outcome, detail: detail)
        }
        notice(record)
        return record
    }

    /// Checks, without writing, that a record could be appended now: the directory exists, the log opens
    /// for appending (created empty if missing) and its end matches its anchor. Actions call it before
    /// they start, so an action that could not be recorded does not happen.
    public func checkWritable() throws(AuditError) {
        try lock.withLock { (_) throws(AuditError) in
            let fd = try openLocked()
            defer {
                flock(fd.descriptor, LOCK_UN)
                close(fd.descriptor)
            }
            try checkAnchor(try lastRecord(fd.descriptor))
        }
    }

    /// The log opened for appending (created 0640 if missing, owned like its directory when root creates
    /// it) and locked; the caller unlocks and closes it.
    private func openLocked() throws(AuditError) -> (descriptor: Int32, created: Bool, directory: String, owner: stat) {
        let directory =
            (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var directoryInfo = stat()
        guard stat(directory, &directoryInfo) == 0 else {
            throw AuditError(
                "the audit log's directory \(directory) does not exist (audit.path \(path))",
                remedy: "create it, or set audit.path in the configuration to a file in an existing directory")
        }
        let existed = access(path, F_OK) == 0
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw AuditError(
                "cannot open the audit log \(path): \(String(cString: strerror(errno)))",
                remedy: "run as the daemon's user or root (sudo -u horgos horgosctl ...), or fix the file's owner")
        }
        guard flock(fd, LOCK_EX) == 0 else {
            close(fd)
            throw AuditError("cannot lock the audit log \(path): \(String(cString: strerror(errno)))", remedy: "retry")
        }
        if !existed {
            // A log created by root for the daemon's state directory stays writable by the daemon's user.
            if geteuid() == 0 { _ = fchown(fd, directoryInfo.st_uid, directoryInfo.st_gid) }
            Self.syncDirectory(directory)
        }
        return (fd, !existed, directory, directoryInfo)
    }

    private func appendLocked(
        _ action: String, actor: AuditOperator, arguments: [String: String], outcome: AuditOutcome, detail: String?
    ) throws(AuditError) -> AuditRecord {
        let opened = try openLocked()
        let fd = opened.descriptor
        defer {
            flock(fd, LOCK_UN)
            close(fd)
        }
        let last = try lastRecord(fd)
        try checkAnchor(last)
        let nowMs = clock()
        var record = AuditRecord(
            seq: (last?.seq ?? 0) + 1, timeMs: nowMs, action: action, actor: actor,
            arguments: arguments.mapValues { String($0.prefix(4096)) }, outcome: outcome,
            detail: detail.map { String($0.prefix(16384)) }, prev: last?.hash ?? AuditRecord.genesisHash)
        let line = try Self.encode(&record)
        let written = line.withUnsafeBytes { bytes -> Bool in
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
        guard written, fsync(fd) == 0 else {
            throw AuditError(
                "cannot write the audit log \(path): \(String(cString: strerror(errno)))",
                remedy: "check the file system (space, errors) and horgosctl audit --verify")
        }
        try writeAnchor(seq: record.seq, hash: record.hash!, directory: opened.directory, owner: opened.owner)
        return record
    }

    /// Encodes `record` as its line (with the trailing newline) and sets its hash.
    static func encode(_ record: inout AuditRecord) throws(AuditError) -> [UInt8] {
        record.hash = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var body: [UInt8]
        do {
            body = Array(try encoder.encode(record))
        } catch {
            throw AuditError("cannot encode an audit record: \(error)", remedy: "report this as a bug")
        }
        let hash = hexSHA256(body)
        record.hash = hash
        body.removeLast()  // "}"
        body += Array(",\"hash\":\"\(hash)\"}\n".utf8)
        guard body.count <= maxRecordBytes else {
            throw AuditError("an audit record of \(body.count) bytes is too large", remedy: "shorten the arguments")
        }
        return body
    }

    static func hexSHA256(_ bytes: some Collection<UInt8>) -> String {
        SHA256.hash(data: Array(bytes)).map { String(format: "%02x", $0) }.joined()
    }

    /// The last record of the open log (nil when it is empty); refuses an incomplete or damaged last line.
    private func lastRecord(_ fd: Int32) throws(AuditError) -> AuditRecord? {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw AuditError("cannot read the audit log \(path)", remedy: "check the file")
        }
        let size = Int(info.st_size)
        guard size > 0 else { return nil }
        let window = min(size, Self.maxRecordBytes + 1)
        var tail = [UInt8](repeating: 0, count: window)
        let read = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(size - window)) }
        guard read == window else {
            throw AuditError("cannot read the audit log \(path)", remedy: "check the file")
        }
        guard tail.last == UInt8(ascii: "\n") else {
            throw AuditError(
                "the audit log \(path) ends with an incomplete record (truncated, or a crash cut an append)",
                remedy: "run horgosctl audit --verify and follow the RUNBOOK (\"Audit log\"); nothing is appended "
                    + "to a damaged log")
        }
        let body = tail.dropLast()
        let start = body.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? body.startIndex
        guard let record = Self.parse(Array(body[start...])), record.hashMatches else {
            throw AuditError(
                "the last record of the audit log \(path) does not match its hash",
                remedy: "run horgosctl audit --verify and follow the RUNBOOK (\"Audit log\"); nothing is appended "
                    + "to a damaged log")
        }
        return record.record
    }

    /// Refuses to append when the anchor names a later record than the log's last (records were removed
    /// from the end) or another hash for the same record.
    private func checkAnchor(_ last: AuditRecord?) throws(AuditError) {
        guard let anchor = Self.readAnchor(headPath) else { return }
        let lastSeq = last?.seq ?? 0
        if anchor.seq > lastSeq || (anchor.seq == lastSeq && anchor.hash != last?.hash) {
            throw AuditError(
                "the audit log \(path) ends at record \(lastSeq) but its anchor \(headPath) names record "
                    + "\(anchor.seq): records were removed or changed",
                remedy: "run horgosctl audit --verify and follow the RUNBOOK (\"Audit log\"); nothing is appended "
                    + "to a damaged log")
        }
    }

    private func writeAnchor(seq: UInt64, hash: String, directory: String, owner: stat) throws(AuditError) {
        let temporary = headPath + ".partial"
        let text = Array("{\"hash\":\"\(hash)\",\"seq\":\(seq)}\n".utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw AuditError(
                "cannot write the audit anchor \(temporary): \(String(cString: strerror(errno)))",
                remedy: "run as the daemon's user or root")
        }
        if geteuid() == 0 { _ = fchown(fd, owner.st_uid, owner.st_gid) }
        let ok = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, headPath) == 0 else {
            throw AuditError(
                "cannot replace the audit anchor \(headPath): \(String(cString: strerror(errno)))",
                remedy: "check the file system")
        }
        Self.syncDirectory(directory)
    }

    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// The anchor's record number and hash, nil when there is no anchor (or it cannot be read).
    static func readAnchor(_ path: String) -> (seq: UInt64, hash: String)? {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let hash = object["hash"] as? String, let seq = (object["seq"] as? NSNumber)?.uint64Value
        else { return nil }
        return (seq, hash)
    }

    /// One line read back: the record, and whether its stored hash is the hash of its bytes.
    struct ParsedLine {
        var record: AuditRecord
        var hashMatches: Bool
    }

    /// Splits `line` (without its newline) into the body and the stored hash, checks one against the
    /// other, and decodes the record; nil when the line is not a well-formed record.
    static func parse(_ line: [UInt8]) -> ParsedLine? {
        let suffixLength = ",\"hash\":\"".utf8.count + 64 + 2
        guard line.count > suffixLength, line.last == UInt8(ascii: "}") else { return nil }
        let split = line.count - suffixLength
        let suffix = line[split...]
        guard suffix.starts(with: Array(",\"hash\":\"".utf8)) else { return nil }
        let storedHash = String(decoding: suffix.dropFirst(",\"hash\":\"".utf8.count).prefix(64), as: UTF8.self)
        guard storedHash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }),
            line[line.count - 2] == UInt8(ascii: "\"")
        else { return nil }
        let body = Array(line[..<split]) + [UInt8(ascii: "}")]
        guard var record = try? JSONDecoder().decode(AuditRecord.self, from: Data(line)) else { return nil }
        record.hash = storedHash
        return ParsedLine(record: record, hashMatches: hexSHA256(body) == storedHash)
    }
}
