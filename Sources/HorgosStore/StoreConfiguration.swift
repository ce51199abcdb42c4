import Foundation
import HorgosWire

/// What an acknowledged frame survives: when the journal round holding it completes.
///
/// - `disk`: after the round's `write` and `fdatasync`: an acknowledged frame survives a power loss or
///   kernel panic. The default.
/// - `process`: after the round's `write`: it survives a daemon crash or `kill -9`, but the last
///   rounds may be lost on power loss.
///
/// The shards use `synchronous=NORMAL` either way: they are rebuilt from the journal after a crash.
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
/// Limits: `commitMaxRows` bounds an apply transaction's size (and so the WAL growth per commit);
/// `maxQueuedBytes` bounds one region's unapplied journal bytes and `journalMaxBytes` the journal on
/// disk: past either, new frames of the region (or of every region) wait before the journal, their
/// completions do not run, and the daemon's sessions stop reading (backpressure, never a drop).
public struct StoreConfiguration: Sendable {
    /// Directory holding one sub-directory per region.
    public var stateDirectory: String
    /// The regions served (default: the 41 markets of `Region.defaultSet`).
    public var regions: [Region]
    /// Default `.disk` (see `Durability`).
    public var durability: Durability
    /// How long acknowledged journal entries wait before a region's applier writes them into the
    /// shards in one transaction (default 500 ms): data is visible to readers within this plus the
    /// commit. Durability comes from the journal, so a long interval costs only visibility, and each
    /// transaction holds hundreds of rows instead of a handful.
    public var applyIntervalMs: Int
    /// Rows after which an apply transaction commits at once (default 20,000).
    public var commitMaxRows: Int
    /// Size at which the journal starts a new segment file (default 64 MiB, at least 1 MiB).
    public var journalSegmentBytes: Int
    /// The journal's bound on disk (default 1 GiB, at least two segments): at it, new frames wait.
    public var journalMaxBytes: Int
    /// Optional extra wait of a journal round for more arrivals (default 0: natural batching only).
    public var journalMaxDelayMicroseconds: Int
    /// Applier threads (default: one per core, at most the number of regions).
    public var appliers: Int
    /// How often appliers checkpoint and fsync their shards so journal segments can be deleted
    /// (default 10 s; also at once when a segment fills or the journal is full).
    public var durabilityIntervalMs: Int
    /// Bytes the journal keeps allocated in `<state>/journal/reserve` (default 64 MiB, 0: none) so that a
    /// node on a full disk can still start, open its shards and checkpoint them (see `JournalReserve`).
    /// Also the disk-full state's resume threshold: the journal writes again once twice this is free.
    public var journalReserveBytes: Int
    /// How often each region's current day file and registry get a `PRAGMA quick_check` on a separate
    /// read-only connection (default 300,000 ms; 0: never). Damage found is quarantined as if a write
    /// had hit it: the region goes on in a new file at once.
    public var integrityCheckIntervalMs: Int
    /// Called once (on the journal thread) when a journal write or fdatasync failed (a full disk is not
    /// a failure: it is waited out); the journal then acknowledges nothing more. The daemon exits
    /// non-zero here (systemd restarts it, replay recovers).
    public var onJournalFailure: @Sendable (StoreError) -> Void
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
    /// A region's unapplied journal bytes above which its new frames wait (default 64 MiB).
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
    /// Issue 20's hooks into the journal: retention holds, the `replicated` acknowledgement gate and a
    /// callback after each durable round. Empty by default (no stream: the journal behaves as before).
    public var journalHooks = JournalHooks()
    /// What differs per region (`policy.<CC>.*`): its retention and how coarsely positions are stored.
    /// A region without an entry uses `retentionDays` and stores positions as received.
    public var regionPolicies: [Region: RegionStorePolicy] = [:]

    /// Days of partitions `region` keeps: its policy's, else `retentionDays`.
    public func retentionDays(for region: Region) -> Int {
        regionPolicies[region]?.retentionDays ?? retentionDays
    }

    public init(
        stateDirectory: String, regions: [Region] = Region.defaultSet, durability: Durability = .disk,
        applyIntervalMs: Int = 500, commitMaxRows: Int = 20_000, horizon: TimeHorizon = TimeHorizon(),
        retentionDays: Int = 90, walTruncateBytes: Int = 64 << 20, cacheKiB: Int = 8192, busyTimeoutMs: Int32 = 1000,
        maxQueuedBytes: Int = 64 << 20, retryDelayMs: Int = 50, maxRetryDelayMs: Int = 5000,
        journalSegmentBytes: Int = 64 << 20, journalMaxBytes: Int = 1 << 30, journalMaxDelayMicroseconds: Int = 0,
        appliers: Int = ProcessInfo.processInfo.activeProcessorCount, durabilityIntervalMs: Int = 10_000,
        journalReserveBytes: Int = 64 << 20, integrityCheckIntervalMs: Int = 300_000,
        onJournalFailure: @escaping @Sendable (StoreError) -> Void = { _ in },
        clock: @escaping @Sendable () -> Int64 = StoreClock.systemMs,
        log: @escaping @Sendable (StoreLogLevel, String) -> Void = StoreLogLevel.standardError,
        createdBy: String = "horgos"
    ) {
        self.stateDirectory = stateDirectory
        self.regions = regions
        self.durability = durability
        self.applyIntervalMs = applyIntervalMs
        self.commitMaxRows = commitMaxRows
        self.horizon = horizon
        self.retentionDays = retentionDays
        self.walTruncateBytes = walTruncateBytes
        self.cacheKiB = cacheKiB
        self.busyTimeoutMs = busyTimeoutMs
        self.maxQueuedBytes = maxQueuedBytes
        self.retryDelayMs = retryDelayMs
        self.maxRetryDelayMs = maxRetryDelayMs
        self.journalSegmentBytes = max(1 << 20, journalSegmentBytes)
        self.journalMaxBytes = max(2 * self.journalSegmentBytes, journalMaxBytes)
        self.journalMaxDelayMicroseconds = journalMaxDelayMicroseconds
        self.appliers = max(1, appliers)
        self.durabilityIntervalMs = durabilityIntervalMs
        self.journalReserveBytes = max(0, journalReserveBytes)
        self.integrityCheckIntervalMs = max(0, integrityCheckIntervalMs)
        self.onJournalFailure = onJournalFailure
        self.clock = clock
        self.log = log
        self.createdBy = createdBy
    }
}

/// The storage rules of one region that may differ from the store's defaults (`policy.<CC>.*` in the
/// daemon's configuration).
///
/// Retention deletes whole day files older than `retentionDays`; `positionDecimals` rounds every stored
/// latitude and longitude (telemetry rows, the registry's latest position, GB/T 32960 2025 positions)
/// to that many decimal places of a degree (2 decimals: about 1.1 km). The journal keeps a frame as
/// received until its segment is retired; the shards never hold the finer position.
public struct RegionStorePolicy: Sendable, Hashable {
    /// Days of partitions kept; nil: the store's `retentionDays`.
    public var retentionDays: Int?
    /// Decimal places of a degree kept in stored positions, 0...7; nil or 7: as received (1e-7 degree).
    public var positionDecimals: Int?

    /// A policy from its parts.
    public init(retentionDays: Int? = nil, positionDecimals: Int? = nil) {
        self.retentionDays = retentionDays
        self.positionDecimals = positionDecimals
    }

    /// The step in 1e-7 degrees stored positions are rounded to (1: no rounding).
    public var positionStep: Int64 {
        guard let decimals = positionDecimals, (0..<7).contains(decimals) else { return 1 }
        var step: Int64 = 1
        for _ in decimals..<7 { step *= 10 }
        return step
    }

    /// `valueE7` rounded to a multiple of `step` (half away from zero); unchanged when `step` is 1.
    @inline(__always)
    public static func coarsen(_ valueE7: Int64, step: Int64) -> Int64 {
        guard step > 1 else { return valueE7 }
        let half = step / 2
        return valueE7 >= 0 ? (valueE7 + half) / step * step : -((-valueE7 + half) / step * step)
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

/// What the stream (issue 20) attaches to the journal, set before the store starts.
public struct JournalHooks: Sendable {
    /// Segments are deleted only below every hold's LSN; a hold can also keep a region's new frames out.
    public var holds: [any JournalRetentionHold] = []
    /// `replicated`: durable rounds' completions go through it instead of running at once.
    public var gate: (any JournalAcknowledgementGate)?
    /// Called on the journal writer thread after each round is durable, with its last LSN (a reader's wake-up).
    public var durable: (@Sendable (UInt64) -> Void)?

    public init(
        holds: [any JournalRetentionHold] = [], gate: (any JournalAcknowledgementGate)? = nil,
        durable: (@Sendable (UInt64) -> Void)? = nil
    ) {
        self.holds = holds
        self.gate = gate
        self.durable = durable
    }
}
