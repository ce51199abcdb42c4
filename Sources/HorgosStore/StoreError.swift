import CSQLite

/// Why a store operation failed: a kind, the SQLite result code when SQLite said no, its message, and
/// what the store was doing.
///
/// A struct rather than an enum so it can grow without breaking callers; tests and the daemon compare
/// `kind` (and `fault` for the writer's degraded state). `sqliteCode` is the extended result code
/// (0 when the error did not come from SQLite).
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The families of failure the store distinguishes.
    public struct Kind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// SQLite returned an error (see `sqliteCode` and `fault`).
        public static let sqlite = Kind(rawValue: "sqlite")
        /// The region is not one of the store's configured regions.
        public static let unknownRegion = Kind(rawValue: "unknown_region")
        /// The writer's queue is over its hard byte limit; the caller should have paused reading.
        public static let queueFull = Kind(rawValue: "queue_full")
        /// The writer was stopped and takes no more submissions.
        public static let stopped = Kind(rawValue: "stopped")
        /// A payload whose lengths do not add up (the daemon validates first; this is a bug guard).
        public static let invalidPayload = Kind(rawValue: "invalid_payload")
        /// A file written by a newer Horgos (its schema version is above what this code knows).
        public static let schemaTooNew = Kind(rawValue: "schema_too_new")
        /// A file that is not a Horgos file of the expected kind or region.
        public static let foreignFile = Kind(rawValue: "foreign_file")
        /// A file-system operation outside SQLite failed (directory creation, delete, stat).
        public static let fileSystem = Kind(rawValue: "file_system")
        /// The thing asked for does not exist (a region directory, a vehicle).
        public static let notFound = Kind(rawValue: "not_found")
        /// A journal segment is damaged before its end (not a torn tail); the message says what to do.
        public static let journalCorrupt = Kind(rawValue: "journal_corrupt")
        /// A journal write or fdatasync failed: nothing more is acknowledged until a restart.
        public static let journalFailed = Kind(rawValue: "journal_failed")
        /// The file system (or a quota) is out of space (ENOSPC, EDQUOT) for a file the store writes
        /// outside SQLite (the journal): a state the store waits out, not a failure.
        public static let diskFull = Kind(rawValue: "disk_full")
        /// Another process holds the state directory's journal lock (horgosd runs on it).
        public static let inUse = Kind(rawValue: "in_use")
        public var description: String { rawValue }
    }

    public var kind: Kind
    /// SQLite's extended result code, 0 when SQLite was not involved.
    public var sqliteCode: Int32
    /// SQLite's or the operating system's message.
    public var message: String
    /// What the store was doing, e.g. "commit AE/telemetry-2026-11-29.sqlite".
    public var context: String

    public init(_ kind: Kind, sqliteCode: Int32 = 0, message: String, context: String) {
        self.kind = kind
        self.sqliteCode = sqliteCode
        self.message = message
        self.context = context
    }

    /// The fault class of a SQLite error, for the writer's degraded state and the logs.
    public var fault: StoreFault {
        if kind == .schemaTooNew || kind == .foreignFile { return .incompatibleFile }
        if kind == .diskFull { return .diskFull }
        guard kind == .sqlite else { return kind == .fileSystem ? .ioError : .other }
        switch sqliteCode & 0xFF {
        case SQLITE_FULL: return .diskFull
        case SQLITE_IOERR, SQLITE_CANTOPEN: return .ioError
        case SQLITE_BUSY, SQLITE_LOCKED: return .locked
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .corrupt
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH: return .readOnly
        default: return .other
        }
    }

    public var description: String {
        if sqliteCode != 0 {
            return "\(kind) (SQLite \(sqliteCode) \(fault.rawValue)): \(message) [\(context)]"
        }
        return "\(kind): \(message) [\(context)]"
    }
}

/// The cause of a region writer's degraded state, named for what an operator must fix.
public enum StoreFault: String, Sendable, Hashable, CaseIterable {
    /// SQLITE_FULL: the file system is full (or a quota hit).
    case diskFull = "disk_full"
    /// SQLITE_IOERR / SQLITE_CANTOPEN or a failing file-system call.
    case ioError = "io_error"
    /// SQLITE_BUSY / SQLITE_LOCKED: another process holds a lock on a region file.
    case locked
    /// SQLITE_CORRUPT / SQLITE_NOTADB: a damaged file.
    case corrupt
    /// SQLITE_READONLY / SQLITE_PERM: the file or directory is not writable.
    case readOnly = "read_only"
    /// A file of a newer schema version, or of another kind or region, where the store expects its own.
    case incompatibleFile = "incompatible_file"
    /// Anything else.
    case other
}
