/// A storage region: an ISO 3166-1 alpha-2 market code such as `AE` or `MX`.
///
/// The market in a certificate picks the region; each region has its own directory, writer and files,
/// so regions never share a lock or a failure. Only two upper-case ASCII letters are accepted.
public struct Region: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let code: String

    /// Nil unless `code` is exactly two letters A-Z.
    public init?(_ code: String) {
        let bytes = Array(code.utf8)
        guard bytes.count == 2, bytes.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
            return nil
        }
        self.code = code
    }

    public var description: String { code }
    public static func < (lhs: Region, rhs: Region) -> Bool { lhs.code < rhs.code }

    /// The 41 default markets (configuration may replace them).
    public static let defaultCodes = [
        "AE", "SA", "QA", "KW", "OM", "BH", "EG", "MA", "ZA", "NG", "KE", "TR", "IL", "KZ", "UZ", "AZ", "TH", "MY",
        "SG", "ID", "PH", "VN", "KH", "AU", "NZ", "MX", "BR", "CL", "CO", "PE", "AR", "EC", "UY", "HU", "PL", "DE",
        "ES", "IT", "GB", "FR", "NO",
    ]
    public static let defaultSet: [Region] = defaultCodes.compactMap(Region.init)
}

/// What a commit survives before the writer reports it.
///
/// - `disk`: WAL with `synchronous=FULL`; the WAL is fsynced at every commit, so an acknowledged row
///   survives a power loss or kernel panic. The default.
/// - `process`: WAL with `synchronous=NORMAL`; the WAL is fsynced only at checkpoints, so an
///   acknowledged row survives a daemon crash or `kill -9` but the last commits may be lost on power loss.
public enum Durability: String, Sendable, Hashable, CaseIterable {
    case disk
    case process
}

/// The window of device timestamps a region stores, relative to the server clock.
///
/// Records outside it are rejected and counted (never stored elsewhere): far past data would land in
/// deleted or unopened partitions, future data is a unit with a broken clock.
public struct TimeHorizon: Sendable, Hashable {
    /// How far back a record may be (default 7 days).
    public var pastMs: Int64
    /// How far ahead of the server clock a record may be (default 1 day).
    public var futureMs: Int64

    public init(pastMs: Int64 = 7 * 86_400_000, futureMs: Int64 = 86_400_000) {
        self.pastMs = pastMs
        self.futureMs = futureMs
    }

    /// Whether `timestampMs` is storable at server time `nowMs`.
    @inline(__always)
    public func contains(_ timestampMs: Int64, nowMs: Int64) -> Bool {
        timestampMs >= nowMs - pastMs && timestampMs <= nowMs + futureMs
    }
}

/// Settings of the shard store; every field has a production default.
///
/// Limits: `commitMaxRows` bounds a transaction's size (and so the WAL growth per commit);
/// `maxQueuedBytes` is a hard guard behind the daemon's own watermarks on `RegionWriter.queuedBytes`.
public struct StoreConfiguration: Sendable {
    /// Directory holding one sub-directory per region.
    public var stateDirectory: String
    /// The regions served (default: the 41 markets of `Region.defaultSet`).
    public var regions: [Region]
    /// Default `.disk` (see `Durability`).
    public var durability: Durability
    /// Longest time the first submission of a transaction waits for others (default 20 ms). Every
    /// transaction costs a WAL write and fsync per file it touches, so a window that holds several
    /// submissions is what makes one-record-per-frame traffic cheap: at 240 records/s per region
    /// (10,000 vehicles at 1 record/s over 41 regions) 5 ms held ~2 records per transaction and cost
    /// ~100 µs of CPU per record, 20 ms holds ~5 and costs ~60 µs (`horgos-bench-store`, part f).
    public var commitIntervalMs: Int
    /// Rows after which a transaction commits at once (default 20,000).
    public var commitMaxRows: Int
    /// The storable window of device timestamps.
    public var horizon: TimeHorizon
    /// Days partitions are kept (default 90); older partitions are deleted whole.
    public var retentionDays: Int
    /// A region's WAL is truncated by a TRUNCATE checkpoint when it grows past this (default 64 MiB).
    public var walTruncateBytes: Int
    /// Page cache per connection in KiB (default 8 MiB).
    public var cacheKiB: Int
    /// How long the writer waits on a lock held by another process before treating it as a fault.
    public var busyTimeoutMs: Int32
    /// Submissions beyond this many queued payload bytes are refused with `.queueFull` (default 256 MiB).
    public var maxQueuedBytes: Int
    /// First retry delay after a fault; doubles up to `maxRetryDelayMs` (defaults 50 ms, 5 s).
    public var retryDelayMs: Int
    public var maxRetryDelayMs: Int
    /// The server clock in ms since the epoch (tests move it).
    public var clock: @Sendable () -> Int64
    /// Receives one line per noteworthy event (faults, recovery, retention); default prints to stderr.
    public var log: @Sendable (StoreLogLevel, String) -> Void
    /// Written into every file's `meta` table as `created_by`.
    public var createdBy: String

    public init(
        stateDirectory: String, regions: [Region] = Region.defaultSet, durability: Durability = .disk,
        commitIntervalMs: Int = 20, commitMaxRows: Int = 20_000, horizon: TimeHorizon = TimeHorizon(),
        retentionDays: Int = 90, walTruncateBytes: Int = 64 << 20, cacheKiB: Int = 8192, busyTimeoutMs: Int32 = 1000,
        maxQueuedBytes: Int = 256 << 20, retryDelayMs: Int = 50, maxRetryDelayMs: Int = 5000,
        clock: @escaping @Sendable () -> Int64 = StoreClock.systemMs,
        log: @escaping @Sendable (StoreLogLevel, String) -> Void = StoreLogLevel.standardError,
        createdBy: String = "horgos"
    ) {
        self.stateDirectory = stateDirectory
        self.regions = regions
        self.durability = durability
        self.commitIntervalMs = commitIntervalMs
        self.commitMaxRows = commitMaxRows
        self.horizon = horizon
        self.retentionDays = retentionDays
        self.walTruncateBytes = walTruncateBytes
        self.cacheKiB = cacheKiB
        self.busyTimeoutMs = busyTimeoutMs
        self.maxQueuedBytes = maxQueuedBytes
        self.retryDelayMs = retryDelayMs
        self.maxRetryDelayMs = maxRetryDelayMs
        self.clock = clock
        self.log = log
        self.createdBy = createdBy
    }
}

/// Severity of a store log line (mapped by the daemon onto swift-log levels).
public enum StoreLogLevel: String, Sendable, Hashable {
    case info, warning, error

    /// The default sink: `<level> horgos-store: message` on standard error.
    @Sendable public static func standardError(_ level: StoreLogLevel, _ message: String) {
        let line = "\(level.rawValue) horgos-store: \(message)\n"
        line.utf8CString.withUnsafeBufferPointer { buffer in
            _ = StoreFiles.writeAll(fd: 2, buffer.baseAddress!, buffer.count - 1)
        }
    }
}
