import CSQLite

/// Process-wide SQLite setup, done once before the first connection: global memory statistics off
/// (they take a global mutex on every allocation, measured to halve throughput with two writers).
enum SQLiteProcessSetup {
    static let done: Bool = {
        _ = horgos_sqlite3_config_memstatus(0)
        return sqlite3_initialize() == SQLITE_OK
    }()

    static func ensure() { _ = done }
}

/// One SQLite connection, used by one thread at a time (opened NOMUTEX).
///
/// Not Sendable: the writer's connections live on the writer thread, a reader's in its call.
final class SQLiteConnection {
    let handle: OpaquePointer
    let path: String
    /// Pages in the WAL after the last commit (written by the WAL hook of `takeOverCheckpoints()`).
    private let walPageCount: UnsafeMutablePointer<Int32>
    /// The writer's checkpoint bookkeeping (see `RegionEngine.checkpointLargeWALs()`).
    var nextCheckpointPages: Int32 = 1000
    var lastSeenWALPages: Int32 = 0
    /// Bytes of one WAL frame (a page and its 24-byte header), set by `takeOverCheckpoints()`.
    private(set) var walFrameBytes = 4096 + 24
    /// The last path component, for error contexts.
    var name: String { path.split(separator: "/").suffix(2).joined(separator: "/") }

    init(path: String, readOnly: Bool) throws(StoreError) {
        SQLiteProcessSetup.ensure()
        var db: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw StoreError(.sqlite, sqliteCode: rc, message: message, context: "open \(path)")
        }
        sqlite3_extended_result_codes(db, 1)
        walPageCount = .allocate(capacity: 1)
        walPageCount.initialize(to: 0)
        self.handle = db
        self.path = path
    }

    deinit {
        sqlite3_close_v2(handle)
        walPageCount.deallocate()
    }

    /// Pages in the WAL after the last commit on this connection (0 before `takeOverCheckpoints()`).
    var walPages: Int32 { walPageCount.pointee }

    /// Replaces SQLite's automatic checkpoint, which runs inside the COMMIT that crosses 1,000 WAL
    /// pages (so the ACKs of that transaction wait for it), with a hook that only counts the pages:
    /// the owner checkpoints when it chooses. (A WAL hook replaces `wal_autocheckpoint`.)
    func takeOverCheckpoints() {
        if let pageSize = try? scalar("PRAGMA page_size") { walFrameBytes = Int(pageSize) + 24 }
        sqlite3_wal_hook(
            handle,
            { context, _, _, pages in
                context?.assumingMemoryBound(to: Int32.self).pointee = pages
                return SQLITE_OK
            }, UnsafeMutableRawPointer(walPageCount))
    }

    func error(_ rc: Int32, _ context: @autoclosure () -> String) -> StoreError {
        StoreError(
            .sqlite, sqliteCode: rc, message: String(cString: sqlite3_errmsg(handle)),
            context: "\(context()) \(name)")
    }

    /// Runs one or more statements without results.
    func exec(_ sql: String) throws(StoreError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        if rc != SQLITE_OK { throw error(rc, String(sql.prefix(60))) }
    }

    func prepare(_ sql: String) throws(StoreError) -> SQLiteStatement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, "prepare \(sql.prefix(60))") }
        return SQLiteStatement(stmt, connection: self)
    }

    /// The first column of the first row of `sql` as an integer (nil for no row or NULL).
    func scalar(_ sql: String, _ bindings: Int64...) throws(StoreError) -> Int64? {
        let stmt = try prepare(sql)
        for (index, value) in bindings.enumerated() { stmt.bind(Int32(index + 1), value) }
        guard try stmt.step(), !stmt.isNull(0) else { return nil }
        return stmt.int64(0)
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var changes: Int32 { sqlite3_changes(handle) }
    var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Applies the store's connection settings: WAL, the durability's synchronous level.
    func configureForWriting(durability: Durability, cacheKiB: Int, busyTimeoutMs: Int32) throws(StoreError) {
        sqlite3_busy_timeout(handle, busyTimeoutMs)
        let mode = try prepare("PRAGMA journal_mode=WAL")
        _ = try mode.step()
        let sync = durability == .disk ? "FULL" : "NORMAL"
        try exec("PRAGMA synchronous=\(sync); PRAGMA cache_size=-\(cacheKiB); PRAGMA temp_store=MEMORY")
    }

    /// Runs a checkpoint; returns (frames in the WAL, frames checkpointed) or throws on error other than BUSY.
    @discardableResult
    func checkpoint(truncate: Bool) throws(StoreError) -> (log: Int32, done: Int32) {
        var log: Int32 = 0
        var done: Int32 = 0
        let mode = truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, mode, &log, &done)
        if rc != SQLITE_OK && rc & 0xFF != SQLITE_BUSY && rc & 0xFF != SQLITE_LOCKED {
            throw error(rc, "checkpoint")
        }
        return (log, done)
    }
}

extension SQLiteConnection {
    /// A TRUNCATE checkpoint that reports whether it completed: every WAL frame copied into the database
    /// and the WAL file truncated to zero bytes (false when a reader kept it from finishing).
    func checkpointTruncated() -> Bool {
        var log: Int32 = 0
        var done: Int32 = 0
        return sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, &log, &done) == SQLITE_OK
    }
}

/// A prepared statement; reused across transactions (prepared PERSISTENT) and reset after each use.
final class SQLiteStatement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection

    init(_ handle: OpaquePointer, connection: SQLiteConnection) {
        self.handle = handle
        self.connection = connection
    }

    deinit { sqlite3_finalize(handle) }

    @inline(__always) func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    @inline(__always) func bind(_ index: Int32, _ value: Int) { sqlite3_bind_int64(handle, index, Int64(value)) }
    @inline(__always) func bindNull(_ index: Int32) { sqlite3_bind_null(handle, index) }
    func bind(_ index: Int32, _ text: String) { sqlite3_bind_text(handle, index, text, -1, horgos_sqlite_transient()) }
    func bind(_ index: Int32, _ value: Int64?) {
        if let value { bind(index, value) } else { bindNull(index) }
    }
    /// Binds bytes that stay alive until the statement is stepped and reset (no copy).
    @inline(__always) func bindStatic(_ index: Int32, text bytes: UnsafeRawBufferPointer) {
        sqlite3_bind_text(
            handle, index, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count),
            horgos_sqlite_static())
    }

    /// Steps once: true when a row is available, false when done. Resets on error.
    @inline(__always) func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let message = String(cString: sqlite3_errmsg(connection.handle))
        sqlite3_reset(handle)
        throw StoreError(
            .sqlite, sqliteCode: rc, message: message,
            context: "step \(String(cString: sqlite3_sql(handle)).prefix(60)) \(connection.name)")
    }

    /// The first column of the first row as text (nil for no row), then resets.
    func firstText() throws(StoreError) -> String? {
        defer { sqlite3_reset(handle) }
        return try step() ? text(0) : nil
    }

    /// Steps a statement without rows and resets it for the next use.
    @inline(__always) func run() throws(StoreError) {
        defer { sqlite3_reset(handle) }
        _ = try step()
    }

    @inline(__always) func reset() { sqlite3_reset(handle) }
    func clearBindings() { sqlite3_clear_bindings(handle) }

    @inline(__always) func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    @inline(__always) func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: pointer)
    }
    /// Columns of the statement's result.
    var columnCount: Int32 { sqlite3_column_count(handle) }
    /// The name of result column `column`.
    func columnName(_ column: Int32) -> String { String(cString: sqlite3_column_name(handle, column)) }
    /// The bytes of a BLOB (or TEXT) column, copied.
    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
    /// True when column `column` of the current row holds a BLOB.
    func isBlob(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_BLOB }
}
