import Dispatch
import Foundation
import HorgosWire
import Synchronization

/// The health of a region's applier, for `/status`, metrics and the watchdog.
public enum RegionWriterState: Sendable, Hashable {
    /// Opening files at start.
    case starting
    /// Applying normally.
    case ok
    /// The last apply attempt failed with `fault`; the applier rolls back, keeps the entries (they
    /// are in the journal) and retries with backoff. Frames are still acknowledged (the journal holds
    /// them) until the region's unapplied bytes reach their bound; then its sessions get backpressure.
    case degraded(fault: StoreFault, message: String)
    /// Stopped: takes no more submissions.
    case stopped
}

/// Counters of one region since the store started (a snapshot; counters only grow).
///
/// `commitLatencyBucketsUs` are upper bounds in microseconds of the histogram in
/// `commitLatencyCounts` (the last count is "above the last bound"), the shape Prometheus wants:
/// one sample per journal round that held frames of the region, from its oldest frame's submission
/// to the round being durable (what an ACK waits for).
public struct RegionWriterStatistics: Sendable, Hashable {
    public static let commitLatencyBucketsUs: [Int] = [
        250, 500, 1_000, 2_500, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 100_000, 250_000,
        500_000, 1_000_000,
    ]
    public var recordsStored = 0
    public var recordsDuplicate = 0
    public var recordsRejected = 0
    public var eventsStored = 0
    /// Frames acknowledged (their journal round was durable).
    public var submissionsCommitted = 0
    /// Apply transactions committed into the shards.
    public var commits = 0
    public var failedAttempts = 0
    /// One count per bucket of `commitLatencyBucketsUs`, plus one for "slower".
    public var commitLatencyCounts = [Int](repeating: 0, count: commitLatencyBucketsUs.count + 1)
    public var commitLatencySumUs = 0
    /// Monotonic time (ns, CLOCK_MONOTONIC) of the applier's last turn for this region (at least once
    /// a second; a degraded region still turns: it is alive and retrying). The watchdog's "writer
    /// makes progress": only a thread hung in a system call stops moving it.
    public var lastProgressNs: UInt64 = 0
    /// Monotonic time (ns) of the last apply commit (0: none yet).
    public var lastCommitNs: UInt64 = 0
    /// The LSN of the last journal entry applied to the shards (stored in the registry's `meta`).
    public var appliedLSN: UInt64 = 0
    /// The LSN up to which the region's shards are checkpointed and fsynced.
    public var durableLSN: UInt64 = 0
    /// Entries acknowledged and not yet applied: counted up when the journal delivers a durable round
    /// and down in the same update that moves `appliedLSN`, so the two never disagree.
    public var unappliedEntries = 0
    /// Journal bytes of those entries (the backpressure figure, as of this snapshot).
    public var unappliedBytes = 0
    /// Entries handed to the region's applier since start (durable rounds, and entries found in the journal
    /// at start) and, of them, those it has taken off (applied, or skipped as applied before): always
    /// `appliedEntries + unappliedEntries == deliveredEntries` in one snapshot.
    public var deliveredEntries = 0
    public var appliedEntries = 0
    /// Arrival time (ms since the epoch) of the oldest unapplied entry, nil when none: apply lag in
    /// seconds is now minus this.
    public var oldestUnappliedArrivalMs: Int64?
    /// Damaged files moved aside (`*.quarantined-<ms>`) since start.
    public var quarantinedFiles = 0
    /// Erasure tombstones applied since start (submitted here or replayed from the journal).
    public var erasures = 0
}

/// One region's health and counters read together, under one lock: a status is a snapshot, so the
/// applied LSN, the apply lag, the counters and the state in it all describe the same moment.
public struct RegionWriterSnapshot: Sendable, Hashable {
    public var state: RegionWriterState
    public var statistics: RegionWriterStatistics
}

/// One region of the store: where its frames are submitted (into the shared journal), its unapplied
/// bytes (the daemon's backpressure number), its health and counters. Its applier (one thread of the
/// pool, shared with other regions) writes its acknowledged journal entries into the region's shards.
///
/// A submission's completion runs once the journal round holding it is durable, on the journal
/// thread; it must be quick. Limits: a payload's bytes must stay valid until its completion runs;
/// `queuedBytes` (unapplied journal bytes) above `maxQueuedBytes` holds the region's new frames back.
public final class RegionWriter: Sendable {
    public let region: Region
    let configuration: StoreConfiguration
    let journal: Journal
    /// Entries delivered by the journal, taken by the applier.
    let inbox = Mutex<[JournalEntry]>([])
    /// The hot path's copy of `RegionWriterStatistics.unappliedBytes` (journal admission reads it per frame).
    let unappliedBytes = Atomic<Int>(0)
    /// See `RegionWriterStatistics.durableLSN`; read by journal retention.
    let durableLSN: Atomic<UInt64>
    /// State and counters: one lock, so every reader gets one consistent snapshot. Lock order: this, then
    /// `inbox` (never the other way round).
    private let record = Mutex(RegionWriterSnapshot(state: .starting, statistics: RegionWriterStatistics()))
    /// What waits for each erasure submitted here and not yet applied, in submission order, which is
    /// the order of their LSNs and so the order the applier applies them in.
    private let eraseWaiters = Mutex<[@Sendable (EraseReport) -> Void]>([])

    init(region: Region, configuration: StoreConfiguration, journal: Journal) {
        self.region = region
        self.configuration = configuration
        self.journal = journal
        let durable = journal.durableAtStart.lsns[region] ?? 0
        durableLSN = Atomic(durable)
        record.withLock {
            $0.statistics.lastProgressNs = StoreClock.monotonicNs()
            $0.statistics.durableLSN = durable
        }
    }

    /// Journal bytes of this region acknowledged and not yet applied to its shards (the daemon's
    /// watermarks compare against this).
    public var queuedBytes: Int { unappliedBytes.load(ordering: .relaxed) }
    /// Current health.
    public var state: RegionWriterState { record.withLock { $0.state } }
    /// A snapshot of the counters.
    public var statistics: RegionWriterStatistics { record.withLock { $0.statistics } }
    /// State and counters of one moment (what `/status` and `/metrics` show).
    public var snapshot: RegionWriterSnapshot { record.withLock { $0 } }

    /// Queues a TELEMETRY payload (validated by the caller with `TelemetryBatchView`).
    public func submitTelemetry(
        _ payload: some FrameBytes, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        try submit(.telemetry, payload, completion: completion)
    }

    /// Queues an EVENT payload (validated by the caller with `EventView`).
    public func submitEvent(
        _ payload: some FrameBytes, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        try submit(.event, payload, completion: completion)
    }

    /// Queues a GB/T 32960 realtime or reissue frame as a `GBT32960Entry` (validated by the caller
    /// with HorgosGBT32960): journal entry kind 3, applied by `RegionEngine.applyGBT32960`.
    public func submitGBT32960(
        _ entry: some FrameBytes, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        try submit(.gbt32960, entry, completion: completion)
    }

    /// Queues an erasure of `vin` (journal entry kind 4, a tombstone at the next LSN): once applied,
    /// no row of the vehicle that arrived before it remains in the region's files, and frames that
    /// arrive after it are stored as usual. `durable` runs (on the journal thread) once the tombstone
    /// is durable: from then on a crash cannot undo it (a replay applies it again). `applied` runs (on
    /// the applier's thread) once it is applied and committed, with what was removed per file. A region
    /// that does not hold the vehicle reports no files.
    public func submitErase(
        _ vin: VIN, durable: @escaping @Sendable () -> Void = {},
        applied: @escaping @Sendable (EraseReport) -> Void
    ) throws(StoreError) {
        let payload = Array(vin.description.utf8)
        try eraseWaiters.withLock { (waiters) throws(StoreError) in
            // Appended and submitted under one lock: the waiters' order is the tombstones' LSN order.
            waiters.append(applied)
            do throws(StoreError) {
                try submit(.erase, payload) { _ in durable() }
            } catch {
                waiters.removeLast()
                throw error
            }
        }
    }

    /// Called by the applier after a committed transaction applied an erasure tombstone; `live` is
    /// false for one replayed from the journal at start (nobody waits for it).
    func erasureApplied(_ report: EraseReport, live: Bool) {
        updateStatistics { $0.erasures += 1 }
        configuration.log(
            .info,
            "\(region): erased vehicle \(report.vin) at LSN \(report.lsn)\(live ? "" : " (replayed from the journal)"): "
                + "\(report.telemetryRows) telemetry rows, \(report.totalRows) rows in \(report.files.count) files")
        guard live else { return }
        let waiter = eraseWaiters.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        waiter?(report)
    }

    /// Queues a payload of `kind` into the journal; `completion` runs (on the journal thread) once the
    /// round holding it is durable, with the records outside the time horizon as `rejected`.
    public func submit(
        _ kind: JournalEntryKind, _ payload: some FrameBytes, context: [UInt8] = [],
        completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        let arrivalMs = configuration.clock()
        let horizon = configuration.horizon
        let shape: (rows: Int, rejected: Int)? = payload.withUnsafeBytes { bytes in
            guard bytes.count <= JournalFormat.maxPayloadBytes, let rows = kind.rows(bytes) else { return nil }
            return (rows, kind.rejected(bytes, horizon: horizon, arrivalMs: arrivalMs))
        }
        guard let shape else {
            throw StoreError(.invalidPayload, message: "\(kind) lengths do not add up", context: "submit \(region)")
        }
        try journal.submit(
            JournalSubmission(
                region: self, kind: kind, bytes: payload, context: context, arrivalMs: arrivalMs,
                outcome: CommitOutcome(stored: shape.rows - shape.rejected, rejected: shape.rejected),
                completion: completion))
    }

    /// Stops the whole store (journal, then appliers: `ShardStore.stop`); every region stops together.
    public func stop(timeoutMs: Int = 30_000) {
        stopStore.withLock { $0 }?(timeoutMs)
    }

    /// Set by the store: stops it.
    let stopStore = Mutex<(@Sendable (Int) -> Void)?>(nil)

    // MARK: called by the journal and the applier

    /// Called by the journal writer after a round was durable (and by the applier at start for the
    /// entries found in the journal): they count as apply lag until `recordApplied` takes them off.
    func deliver(_ entries: [JournalEntry], toInbox: Bool = true) {
        guard let first = entries.first else { return }
        let bytes = entries.reduce(0) { $0 + $1.entryBytes }
        unappliedBytes.add(bytes, ordering: .relaxed)
        record.withLock { r in
            r.statistics.unappliedEntries += entries.count
            r.statistics.deliveredEntries += entries.count
            r.statistics.unappliedBytes += bytes
            if r.statistics.oldestUnappliedArrivalMs == nil { r.statistics.oldestUnappliedArrivalMs = first.arrivalMs }
            if toInbox { inbox.withLock { $0.append(contentsOf: entries) } }
        }
    }

    /// Called by the applier after a commit: `entries` entries of `bytes` bytes are in the shards (or were
    /// skipped as applied before), up to `appliedLSN`; `nextArrivalMs` is the arrival of the applier's next
    /// pending entry (nil: none taken; the inbox is looked at). One update, so no snapshot shows the new
    /// applied LSN with the old lag.
    func recordApplied(
        entries: Int, bytes: Int, appliedLSN: UInt64, nextArrivalMs: Int64?,
        _ counters: (inout RegionWriterStatistics) -> Void
    ) {
        unappliedBytes.subtract(bytes, ordering: .relaxed)
        record.withLock { r in
            r.statistics.unappliedEntries -= entries
            r.statistics.appliedEntries += entries
            r.statistics.unappliedBytes -= bytes
            r.statistics.appliedLSN = max(r.statistics.appliedLSN, appliedLSN)
            r.statistics.oldestUnappliedArrivalMs =
                r.statistics.unappliedEntries == 0 ? nil : nextArrivalMs ?? inbox.withLock { $0.first?.arrivalMs }
            counters(&r.statistics)
        }
    }

    func recordAcknowledged(_ count: Int, oldestSubmittedNs: UInt64, nowNs: UInt64) {
        let latencyUs = Int((nowNs &- oldestSubmittedNs) / 1000)
        let bucket =
            RegionWriterStatistics.commitLatencyBucketsUs.firstIndex { latencyUs <= $0 }
            ?? RegionWriterStatistics.commitLatencyBucketsUs.count
        record.withLock { r in
            r.statistics.submissionsCommitted += count
            r.statistics.commitLatencyCounts[bucket] += 1
            r.statistics.commitLatencySumUs += latencyUs
        }
    }

    func updateStatistics(_ body: (inout RegionWriterStatistics) -> Void) {
        record.withLock { body(&$0.statistics) }
    }

    func setState(_ new: RegionWriterState) {
        let old = record.withLock { r in
            let old = r.state
            r.state = new
            return old
        }
        switch (old, new) {
        case (.degraded(let fault, _), .ok):
            configuration.log(.info, "\(region): writer recovered from \(fault.rawValue)")
        case (.degraded(let oldFault, _), .degraded(let fault, let message)) where oldFault != fault:
            configuration.log(.error, "\(region): writer degraded (\(fault.rawValue)): \(message)")
        case (.degraded, .degraded):
            break
        case (_, .degraded(let fault, let message)):
            configuration.log(.error, "\(region): writer degraded (\(fault.rawValue)), retrying: \(message)")
        default:
            break
        }
    }
}
