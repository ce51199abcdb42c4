import Dispatch
import Foundation
import Synchronization

/// The health of a region writer, for `/status`, metrics and the watchdog.
public enum RegionWriterState: Sendable, Hashable {
    /// Opening files at start.
    case starting
    /// Committing normally.
    case ok
    /// The last attempt failed with `fault`; the writer rolls back, keeps the batches and retries with
    /// backoff. Nothing is acknowledged while degraded.
    case degraded(fault: StoreFault, message: String)
    /// Stopped: takes no more submissions.
    case stopped
}

/// Counters of one region writer since it started (a snapshot; values only grow).
///
/// `commitLatencyBucketsUs` are upper bounds in microseconds of the histogram in
/// `commitLatencyCounts` (the last count is "above the last bound"), the shape Prometheus wants.
public struct RegionWriterStatistics: Sendable, Hashable {
    public static let commitLatencyBucketsUs: [Int] = [
        250, 500, 1_000, 2_500, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 100_000, 250_000,
        500_000, 1_000_000,
    ]
    public var recordsStored = 0
    public var recordsDuplicate = 0
    public var recordsRejected = 0
    public var eventsStored = 0
    public var submissionsCommitted = 0
    public var commits = 0
    public var failedAttempts = 0
    /// One count per bucket of `commitLatencyBucketsUs`, plus one for "slower".
    public var commitLatencyCounts = [Int](repeating: 0, count: commitLatencyBucketsUs.count + 1)
    public var commitLatencySumUs = 0
    /// Monotonic time (ns, CLOCK_MONOTONIC) of the writer loop's last turn: a commit, an idle wake-up
    /// (at least once a second) or a retry. The watchdog's "writer makes progress": only a thread hung
    /// in a system call stops moving it. A degraded writer still moves it (it is alive and retrying;
    /// restarting the daemon would not cure a full disk and would stop the healthy regions).
    public var lastProgressNs: UInt64 = 0
    /// Monotonic time (ns) of the last successful commit (0: none yet).
    public var lastCommitNs: UInt64 = 0
}

/// The group-commit writer of one region: one thread, one queue, one transaction every few
/// milliseconds for everything that arrived.
///
/// Many connections submit TELEMETRY and EVENT payloads; the writer thread appends them to the
/// region's files in one transaction per `commitIntervalMs` or `commitMaxRows` (whichever first),
/// commits, then calls each submission's completion on the writer thread. A completion is called only
/// after the transaction holding its records committed with the configured durability, so the caller
/// may ACK then. On a fault the transaction is rolled back, the submissions kept and retried with
/// backoff until they commit (completions are never called for a failed attempt).
///
/// Limits: a payload's bytes must stay valid until its completion runs; completions must be quick
/// (they run on the writer thread); `queuedBytes` over `maxQueuedBytes` refuses submissions.
public final class RegionWriter: Sendable {
    public let region: Region
    private let configuration: StoreConfiguration
    private let queue = SubmissionQueue()
    private let bytes = Atomic<Int>(0)
    private let stats = Mutex(RegionWriterStatistics())
    private let status = Mutex(RegionWriterState.starting)
    private let finished = DispatchSemaphore(value: 0)

    init(region: Region, configuration: StoreConfiguration) {
        self.region = region
        self.configuration = configuration
        stats.withLock { $0.lastProgressNs = StoreClock.monotonicNs() }
        let thread = Thread { [self] in self.run() }
        thread.name = "horgos-writer-\(region.code)"
        thread.start()
    }

    /// Payload bytes submitted and not yet committed (the daemon's watermarks compare against this).
    public var queuedBytes: Int { bytes.load(ordering: .relaxed) }
    /// Current health.
    public var state: RegionWriterState { status.withLock { $0 } }
    /// A snapshot of the counters.
    public var statistics: RegionWriterStatistics { stats.withLock { $0 } }

    /// Queues a TELEMETRY payload (validated by the caller with `TelemetryBatchView`); `completion`
    /// runs on the writer thread once it is committed.
    public func submitTelemetry(
        _ payload: some FrameBytes, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        guard let rows = payload.withUnsafeBytes({ PayloadShape.telemetryRecords($0) }) else {
            throw StoreError(.invalidPayload, message: "TELEMETRY lengths do not add up", context: "submit \(region)")
        }
        try enqueue(Submission(kind: .telemetry, bytes: payload, rows: rows, completion: completion))
    }

    /// Queues an EVENT payload (validated by the caller with `EventView`).
    public func submitEvent(
        _ payload: some FrameBytes, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        guard payload.withUnsafeBytes({ PayloadShape.isEvent($0) }) else {
            throw StoreError(.invalidPayload, message: "EVENT lengths do not add up", context: "submit \(region)")
        }
        try enqueue(Submission(kind: .event, bytes: payload, rows: 1, completion: completion))
    }

    /// Queues a GB/T 32960 realtime or reissue frame as a `GBT32960Entry` (validated by the caller
    /// with HorgosGBT32960); `completion` runs on the writer thread once it is committed.
    public func submitGBT32960(
        _ entry: some FrameBytes, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) throws(StoreError) {
        guard entry.withUnsafeBytes({ GBT32960Entry.hasShape($0) }) else {
            throw StoreError(.invalidPayload, message: "GB/T 32960 entry lengths do not add up", context: "submit \(region)")
        }
        try enqueue(Submission(kind: .gbt32960, bytes: entry, rows: 1, completion: completion))
    }

    private func enqueue(_ submission: Submission) throws(StoreError) {
        let size = submission.byteCount
        if bytes.load(ordering: .relaxed) + size > configuration.maxQueuedBytes {
            throw StoreError(.queueFull, message: "\(queuedBytes) bytes queued", context: "submit \(region)")
        }
        bytes.add(size, ordering: .relaxed)
        if !queue.push(submission) {
            bytes.subtract(size, ordering: .relaxed)
            throw StoreError(.stopped, message: "writer stopped", context: "submit \(region)")
        }
    }

    /// Stops taking submissions, commits what is queued, checkpoints and closes the files, and waits
    /// for the thread. A degraded writer keeps retrying until `timeoutMs` has passed, then gives up
    /// (those submissions are not acknowledged, so nothing acknowledged is lost).
    public func stop(timeoutMs: Int = 30_000) {
        queue.stop(deadlineNs: StoreClock.monotonicNs() + UInt64(timeoutMs) * 1_000_000)
        finished.wait()
        finished.signal()
    }

    // MARK: the writer thread

    private func setState(_ new: RegionWriterState) {
        let old = status.withLock { state in
            let old = state
            state = new
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

    private func run() {
        let engine = RegionEngine(region: region, configuration: configuration)
        let intervalNs = UInt64(max(0, configuration.commitIntervalMs)) * 1_000_000
        var backoffMs = configuration.retryDelayMs
        var pending: [Submission] = []
        var head = 0
        var applied: [(Submission, CommitOutcome)] = []
        applied.reserveCapacity(1024)

        func fail(_ error: StoreError) {
            engine.close()
            pending = applied.map(\.0) + pending[head...]
            head = 0
            applied.removeAll(keepingCapacity: true)
            stats.withLock {
                $0.failedAttempts += 1
                $0.lastProgressNs = StoreClock.monotonicNs()
            }
            setState(.degraded(fault: error.fault, message: error.description))
            if queue.pastDeadline { return }
            queue.sleep(ms: backoffMs)
            backoffMs = min(backoffMs * 2, configuration.maxRetryDelayMs)
        }

        while true {
            WriterTestHooks.sleepWhileWedged()
            if !engine.isOpen {
                if queue.pastDeadline { break }
                do {
                    try engine.open(nowMs: configuration.clock())
                } catch {
                    fail(error)
                    continue
                }
                // With submissions held from a failed attempt, only their commit proves recovery.
                if head == pending.count { setState(.ok) }
            }
            if head == pending.count {
                pending = queue.takeFirst()
                head = 0
                stats.withLock { $0.lastProgressNs = StoreClock.monotonicNs() }
                if pending.isEmpty {
                    if queue.isStopping { break }
                    do { try engine.maintain(nowMs: configuration.clock()) } catch { fail(error) }
                    continue
                }
            }
            // The window runs from the oldest submission's arrival: time it spent queued behind a
            // commit or a checkpoint counts, so it never waits a full window on top of that.
            let started = pending[head].submittedNs
            let deadline = started + intervalNs
            let nowMs = configuration.clock()
            var rows = 0
            do {
                try engine.begin()
                while true {
                    while head < pending.count && rows < configuration.commitMaxRows {
                        let submission = pending[head]
                        head += 1
                        let outcome = try submission.bytes.withUnsafeBytes { (payload) throws -> CommitOutcome in
                            switch submission.kind {
                            case .telemetry: try engine.applyTelemetry(payload, nowMs: nowMs)
                            case .event: try engine.applyEvent(payload, nowMs: nowMs)
                            case .gbt32960: try engine.applyGBT32960(payload, nowMs: nowMs)
                            }
                        }
                        applied.append((submission, outcome))
                        rows += submission.rows
                    }
                    if rows >= configuration.commitMaxRows { break }
                    let more = queue.take(untilNs: deadline, orRows: configuration.commitMaxRows - rows)
                    if more.isEmpty { break }
                    pending = more
                    head = 0
                }
                try engine.commit(nowMs: nowMs)
            } catch {
                fail(error as? StoreError ?? StoreError(.sqlite, message: "\(error)", context: "apply \(region)"))
                continue
            }
            backoffMs = configuration.retryDelayMs
            setState(.ok)
            let finishedAt = StoreClock.monotonicNs()
            var total = CommitOutcome()
            var events = 0
            var doneBytes = 0
            for (submission, outcome) in applied {
                if submission.kind == .event { events += outcome.stored } else { total.stored += outcome.stored }
                total.duplicates += outcome.duplicates
                total.rejected += outcome.rejected
                doneBytes += submission.byteCount
            }
            let latencyUs = Int((finishedAt - started) / 1000)
            let bucket =
                RegionWriterStatistics.commitLatencyBucketsUs.firstIndex { latencyUs <= $0 }
                ?? RegionWriterStatistics.commitLatencyBucketsUs.count
            let committed = applied.count
            stats.withLock { s in
                s.recordsStored += total.stored
                s.recordsDuplicate += total.duplicates
                s.recordsRejected += total.rejected
                s.eventsStored += events
                s.submissionsCommitted += committed
                s.commits += 1
                s.commitLatencyCounts[bucket] += 1
                s.commitLatencySumUs += latencyUs
                s.lastProgressNs = finishedAt
                s.lastCommitNs = finishedAt
            }
            bytes.subtract(doneBytes, ordering: .relaxed)
            for (submission, outcome) in applied { submission.completion(outcome) }
            applied.removeAll(keepingCapacity: true)
            if head == pending.count { pending.removeAll(keepingCapacity: true); head = 0 }
            do {
                try engine.checkpointLargeWALs()
                try engine.maintain(nowMs: nowMs)
            } catch {
                fail(error)
            }
        }
        engine.checkpointAll()
        engine.close()
        setState(.stopped)
        finished.signal()
    }
}

/// The writer's inbox: a mutex-protected array with a condition variable.
final class SubmissionQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Submission] = []
    private var queuedRows = 0
    /// The writer waits for the first submission (an empty queue): the first push wakes it.
    private var waitingForFirst = false
    /// The writer waits out its commit window: a push wakes it only once this many rows are queued.
    private var wakeAtRows = Int.max
    private var stopping = false
    private var deadlineNs: UInt64 = .max

    /// False when stopping (the submission was not queued).
    func push(_ submission: Submission) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopping { return false }
        items.append(submission)
        queuedRows += submission.rows
        if (waitingForFirst && items.count == 1) || queuedRows >= wakeAtRows { condition.signal() }
        return true
    }

    /// Everything queued, waiting up to a second for the first item when the queue is empty (the
    /// caller then does maintenance and marks progress). Returns at once when stopping.
    func takeFirst() -> [Submission] {
        condition.lock()
        defer { condition.unlock() }
        if items.isEmpty && !stopping {
            waitingForFirst = true
            _ = condition.wait(until: Date(timeIntervalSinceNow: 1))
            waitingForFirst = false
        }
        return removeAll()
    }

    /// Everything queued once `untilNs` (monotonic) has passed or `rows` rows are queued, whichever
    /// comes first; at once when stopping. The writer is not woken for each arrival inside its commit
    /// window: one wake-up per transaction, however many submissions the window collects.
    func take(untilNs: UInt64, orRows rows: Int) -> [Submission] {
        condition.lock()
        defer { condition.unlock() }
        while queuedRows < rows && !stopping {
            let now = StoreClock.monotonicNs()
            if now >= untilNs { break }
            wakeAtRows = rows
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(untilNs - now) / 1e9))
            wakeAtRows = .max
        }
        return removeAll()
    }

    private func removeAll() -> [Submission] {
        let taken = items
        items.removeAll(keepingCapacity: true)
        queuedRows = 0
        return taken
    }

    func stop(deadlineNs: UInt64) {
        condition.lock()
        stopping = true
        self.deadlineNs = deadlineNs
        condition.broadcast()
        condition.unlock()
    }

    var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Stopping and the stop deadline has passed: a degraded writer gives up.
    var pastDeadline: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping && StoreClock.monotonicNs() >= deadlineNs
    }

    /// Sleeps `ms` or until stop is requested.
    func sleep(ms: Int) {
        condition.lock()
        defer { condition.unlock() }
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(ms) / 1000))
    }
}
