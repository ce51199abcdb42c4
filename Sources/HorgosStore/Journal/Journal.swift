import Foundation
import HorgosWire
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One frame on its way into the journal: the region it is for, its kind and payload, and what the
/// ACK will say (computed at submission from the arrival time stored in the entry).
final class JournalSubmission: Sendable {
    let region: RegionWriter
    let kind: JournalEntryKind
    let bytes: any FrameBytes
    let context: [UInt8]
    let arrivalMs: Int64
    let outcome: CommitOutcome
    let completion: @Sendable (CommitOutcome) -> Void
    let submittedNs: UInt64
    /// Bytes of its journal entry.
    let entryBytes: Int

    init(
        region: RegionWriter, kind: JournalEntryKind, bytes: any FrameBytes, context: [UInt8], arrivalMs: Int64,
        outcome: CommitOutcome, completion: @escaping @Sendable (CommitOutcome) -> Void
    ) {
        self.region = region
        self.kind = kind
        self.bytes = bytes
        self.context = context
        self.arrivalMs = arrivalMs
        self.outcome = outcome
        self.completion = completion
        self.submittedNs = StoreClock.monotonicNs()
        self.entryBytes = JournalFormat.entryOverhead + context.count + bytes.count
    }
}

/// Counters of the journal writer since start (a snapshot).
public struct JournalStatistics: Sendable, Hashable {
    /// Write rounds (one write, and with `disk` one fdatasync, for everything that arrived).
    public var rounds = 0
    public var fdatasyncs = 0
    public var entries = 0
    public var bytesWritten = 0
    /// Bytes of the segment files on disk.
    public var diskBytes = 0
    public var segments = 0
    /// LSN of the last durable (acknowledged) entry.
    public var durableLSN: UInt64 = 0
    /// Frames held back (their sessions see backpressure) because of `journal.max_bytes`, a region's
    /// unapplied-bytes bound or a full disk, now.
    public var heldSubmissions = 0
    /// Monotonic ns of the writer loop's last turn (it turns at least once a second).
    public var lastProgressNs: UInt64 = 0
    /// Set once a write or fdatasync failed: nothing more is acknowledged.
    public var failure: String?
    /// Set while the file system is full (a journal write or segment creation failed with ENOSPC or
    /// EDQUOT, or the reserve could not be taken): nothing is acknowledged, frames wait, and the
    /// journal writes again by itself once space is back. The error that started it.
    public var diskFull: String?
    /// Wall-clock ms since the epoch when the current disk-full state began.
    public var diskFullSinceMs: Int64?
    /// Times the journal entered the disk-full state since start.
    public var diskFullEpisodes = 0
    /// Bytes of the reserve held now (`journalReserveBytes` when held, 0 while released).
    public var reserveBytes = 0
    /// At start: segments read entry by entry, and segments not read because every region had
    /// applied all of them (a start re-reads only what some region still needs).
    public var segmentsReadAtStart = 0
    public var segmentsSkippedAtStart = 0
    /// At start: entries found that some region still has to apply.
    public var entriesRecoveredAtStart = 0
}

/// The ingest journal: one append-only log for every region, written by one thread with group commit
/// by natural batching, and the source of truth for everything acknowledged.
///
/// While one round's `write` + `fdatasync` runs, submissions queue; the next round takes all of them
/// (no fixed sleep; `journalMaxDelayMicroseconds` optionally waits a little for more). After the round
/// is durable (`disk`: fdatasync returned; `process`: write returned) its entries are handed to their
/// regions' appliers and then the completions run (the caller ACKs).
///
/// A full file system is a state, not a failure: a `write` (or a new segment) that fails with ENOSPC
/// or EDQUOT is cut back off the file (`ftruncate` to the last complete round), its frames wait at the
/// head of their regions' queues unacknowledged, the reserve (`JournalReserve`) is released so the
/// appliers can still apply and checkpoint, and once a second the writer looks for space (twice the
/// reserve free, the reserve taken back) and writes again. Any other failed write, and every failed
/// fdatasync, is never retried on the same file: the journal stops acknowledging, logs, and calls
/// `onJournalFailure` (the daemon exits; the replay at the next start recovers, and units resend what
/// was not acknowledged). The on-disk format is `JournalFormat`.
final class Journal: @unchecked Sendable {
    let directory: String
    let configuration: StoreConfiguration
    private let condition = NSCondition()
    private var queue: [JournalSubmission] = []
    private var writerWaiting = false
    private var stopping = false
    private var stopDeadlineNs: UInt64 = .max
    private var failed = false
    /// Live segments, oldest first; the last is the one being appended to once `active` exists.
    private let segments: Mutex<[JournalSegment]>
    private let stats = Mutex(JournalStatistics())
    /// LSN of the last entry handed to the appliers (after its round was durable).
    let deliveredLSN: Atomic<UInt64>
    let diskBytes = Atomic<Int>(0)
    /// Set when appliers should make their shards durable soon (a segment rolled, or the journal is full).
    let checkpointRequested = Atomic<Bool>(false)
    /// Tests only: while set, this store's appliers apply nothing (they keep turning). Per store, not per
    /// process: the suites of one test process run side by side, each with its own store.
    let appliersPaused = Atomic<Bool>(false)
    private var nextLSN: UInt64
    /// The segment appended to; nil until it could be created (a start on a full disk). Writer only.
    private var active: JournalSegment?
    /// Header flags of the segment the writer creates next (`followsGapFlag` after a jump in LSN).
    private var nextSegmentFlags: UInt32 = 0
    /// The reserve file (writer only, after `init`).
    private var reserve: JournalReserve
    /// While the disk is full: when the writer next looks for space (monotonic ns). Writer only.
    private var nextSpaceProbeNs: UInt64 = 0
    /// The regions, set once before `start()`.
    private(set) var regions: [Region: RegionWriter] = [:]
    /// Called after entries were delivered to these regions (wakes their applier threads).
    private var notifyAppliers: @Sendable ([RegionWriter]) -> Void = { _ in }
    private let finished = DispatchSemaphore(value: 0)
    private let retireLock = Mutex(())
    /// When `recordApplied()` next writes (monotonic ns).
    private let nextAppliedRecordNs = Mutex<UInt64>(0)
    /// The last error writing `journal/durable` (under `retireLock`).
    private var lastDurableFileError: String?
    /// Held from `init` to `stop()`: one process per state directory.
    private let lock: JournalLock
    /// What the durability file said at start.
    let durableAtStart: DurableLSNFile.Contents
    /// Entries found at start that some region still has to apply, per region, oldest first.
    private(set) var recovered: [Region: [JournalEntry]] = [:]

    var segmentCapacity: Int { Self.segmentCapacity(configuration) }
    /// Issue 20's retention holds, acknowledgement gate and durable-round callback.
    var hooks: JournalHooks { configuration.journalHooks }
    /// The live segments, oldest first (for `JournalReader`).
    var liveSegments: [JournalSegment] { segments.withLock { $0 } }

    /// Address space mapped per segment: the nominal size plus one largest entry (a round may pass
    /// the nominal size by its last entry).
    static func segmentCapacity(_ configuration: StoreConfiguration) -> Int {
        configuration.journalSegmentBytes + JournalFormat.maxPayloadBytes + 70_000
    }

    /// Opens (and creates) the journal directory, reads the segments some region still needs (cutting a
    /// torn tail, refusing damage in the middle) and starts a new segment past the highest LSN ever
    /// written. `appliedLSNs` are the applied LSNs the regions' registries hold: the next LSN is above
    /// all of them even if the journal directory was emptied, and a region replays only after its own
    /// (after the durable LSN of `journal/durable` when the machine rebooted since). A full disk does
    /// not stop the start: the journal opens in the disk-full state and creates its segment later.
    init(configuration: StoreConfiguration, appliedLSNs: [Region: UInt64]) throws(StoreError) {
        self.configuration = configuration
        directory = "\(configuration.stateDirectory)/journal"
        try StoreFiles.createDirectory(directory)
        lock = try JournalLock(directory: directory)
        durableAtStart = DurableLSNFile.read(directory: directory)
        reserve = JournalReserve(directory: directory, bytes: configuration.journalReserveBytes)
        // A start that finds less than the reserve free gives the reserve back first: the new segment,
        // the shards' WAL and shared-memory files and their checkpoints need the room.
        var releasedAtStart = 0
        if reserve.bytes > 0, (JournalDiskSpace.availableBytes(directory) ?? .max) < reserve.bytes {
            releasedAtStart = reserve.release()
        }
        var highWater = JournalHighWater.read(directory: directory)
        let highWaterUnreadable = highWater == nil && StoreFiles.exists("\(directory)/\(JournalHighWater.fileName)")
        // Where each configured region's replay starts; entries at or below it are not needed.
        var replayAfter: [Region: UInt64] = [:]
        for region in configuration.regions {
            replayAfter[region] = durableAtStart.replayAfter(region, applied: appliedLSNs[region] ?? 0)
        }
        let neededAfter = replayAfter.values.min() ?? 0

        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let found = names.compactMap { name in JournalFormat.firstLSN(segmentFileName: name).map { (name, $0) } }
            .sorted { $0.1 < $1.1 }
        var live: [JournalSegment] = []
        var lastLSN: UInt64 = 0
        var total = 0
        var counts = (read: 0, skipped: 0, entries: 0)
        var newestIntact = false
        for (index, (name, first)) in found.enumerated() {
            let path = "\(directory)/\(name)"
            let isLast = index == found.count - 1
            // Every region applied everything in this segment (the next one starts after it): its
            // entries are not read again; it stays until retention deletes it.
            if !isLast, found[index + 1].1 &- 1 <= neededAfter, lastLSN == 0 || first == lastLSN + 1 {
                let segment = try JournalSegment.openExisting(path: path, firstLSN: first)
                segment.lastLSN.store(found[index + 1].1 - 1, ordering: .relaxed)
                lastLSN = found[index + 1].1 - 1
                total += segment.size.load(ordering: .relaxed)
                live.append(segment)
                counts.skipped += 1
                continue
            }
            guard
                let (segment, intact) = try Self.recover(
                    path: path, firstLSN: first, expectedFirst: lastLSN == 0 ? nil : lastLSN + 1, isLast: isLast,
                    replayAfter: replayAfter, configuration: configuration, into: &recovered)
            else { continue }
            counts.read += 1
            // (An empty segment's last LSN is its first - 1: the next one never starts below it.)
            lastLSN = max(lastLSN, segment.lastLSN.load(ordering: .relaxed))
            if isLast { newestIntact = intact && (highWater == nil || highWater!.segmentFirstLSN == first) }
            if isLast && segment.lastLSN.load(ordering: .relaxed) < segment.firstLSN {
                // The last segment holds no entry (a start that wrote nothing): the new active segment starts at
                // the same LSN, so it has the same file name. Keeping this one would put two segments on one
                // path, and retiring the empty one would unlink the live one under the writer. (Its LSNs are
                // counted above, so the next segment still starts no lower than it did.)
                unlink(path)
                continue
            }
            total += segment.size.load(ordering: .relaxed)
            live.append(segment)
        }
        counts.entries = recovered.values.reduce(0) { $0 + $1.count }
        if highWaterUnreadable, let newest = live.last {
            // A damaged record: assume the newest segment found is the newest ever and may have lost its tail.
            let capacity = Self.segmentCapacity(configuration)
            highWater = (newest.firstLSN, JournalFormat.lsnLimit(firstLSN: newest.firstLSN, capacity: capacity))
            newestIntact = false
        }
        var next =
            max(
                lastLSN, appliedLSNs.values.max() ?? 0, durableAtStart.lsns.values.max() ?? 0,
                durableAtStart.appliedLSNs.values.max() ?? 0) + 1
        // The newest segment ever created is gone, or lost entries at its tail: start past anything it
        // could have held, so no LSN is ever given to two entries.
        if let highWater, !newestIntact { next = max(next, highWater.lsnLimit + 1) }
        if !found.isEmpty && next != lastLSN + 1 {
            nextSegmentFlags = JournalFormat.followsGapFlag
            configuration.log(
                .info,
                "journal: the next segment starts at LSN \(next), past the highest LSN ever written "
                    + "(the last entry found is \(lastLSN))")
        }
        nextLSN = next
        deliveredLSN = Atomic(next - 1)
        diskBytes.store(total, ordering: .relaxed)
        segments = Mutex(live)
        stats.withLock { s in
            s.segmentsReadAtStart = counts.read
            s.segmentsSkippedAtStart = counts.skipped
            s.entriesRecoveredAtStart = counts.entries
        }
        if !found.isEmpty {
            configuration.log(
                .info,
                "journal: \(found.count) segment(s): \(counts.read) read, \(counts.skipped) skipped (applied by "
                    + "every region); \(counts.entries) entries to replay, last LSN \(lastLSN)")
        }
        if releasedAtStart > 0 {
            configuration.log(
                .warning,
                "journal: less than the \(reserve.bytes)-byte reserve is free; released it to start (see "
                    + "Deploy/RUNBOOK.md 'Disk full')")
        }
        do throws(StoreError) {
            do throws(StoreError) {
                try createActiveSegment()
            } catch where error.kind == .diskFull {
                // The reserve is there for this: give it back and try once more.
                guard reserve.release() > 0 else { throw error }
                try createActiveSegment()
            }
            if !reserve.take() {
                throw StoreError(
                    .diskFull, message: "less than \(reserve.bytes) bytes free for the reserve",
                    context: "reserve \(reserve.path)")
            }
        } catch where error.kind == .diskFull {
            // Up in the disk-full state: the admin endpoint answers, frames wait, space is watched.
            enterDiskFull(error)
        }
        let held = reserve.isHeld && reserve.bytes > 0 ? reserve.bytes : 0
        stats.withLock { $0.reserveBytes = held }
    }

    /// Creates the segment the writer appends to (`active`), records it in `high-water` before any entry
    /// goes into it, and makes the directory entry durable. Writer (or `init`) only.
    @discardableResult
    private func createActiveSegment() throws(StoreError) -> JournalSegment {
        let segment = try JournalSegment.create(
            directory: directory, firstLSN: nextLSN, capacity: segmentCapacity, flags: nextSegmentFlags)
        do {
            try JournalHighWater.write(
                directory: directory, segmentFirstLSN: nextLSN,
                lsnLimit: JournalFormat.lsnLimit(firstLSN: nextLSN, capacity: segmentCapacity))
            try Self.syncDirectory(directory)
        } catch {
            unlink(segment.path)
            throw error
        }
        nextSegmentFlags = 0
        diskBytes.add(segment.size.load(ordering: .relaxed), ordering: .relaxed)
        segments.withLock { $0.append(segment) }
        active = segment
        return segment
    }

    /// Reads one segment at start; the entries some region still needs go to `recovered`. Returns the
    /// segment and whether it was intact (false when a torn tail was cut), or nil for a newest segment
    /// whose header never reached the disk (removed).
    private static func recover(
        path: String, firstLSN: UInt64, expectedFirst: UInt64?, isLast: Bool, replayAfter: [Region: UInt64],
        configuration: StoreConfiguration, into recovered: inout [Region: [JournalEntry]]
    ) throws(StoreError) -> (JournalSegment, Bool)? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let advice =
            "The journal holds acknowledged frames that may not be in the shards yet. Keep a copy of the "
            + "journal directory, then run `horgosctl journal check` (damage by segment and offset, and which "
            + "regions still need it) and `horgosctl journal salvage` (keeps every intact entry; loses only the "
            + "damaged bytes), or restore the segment from a backup; see Deploy/RUNBOOK.md, 'Journal damaged'."
        let segment = try JournalSegment.openExisting(path: path, firstLSN: firstLSN)
        let size = segment.size.load(ordering: .relaxed)
        let scan = JournalSegmentScan(segment.bytes(0, size), firstLSN: firstLSN, pastDamage: false)
        guard scan.headerValid else {
            if isLast {
                // A segment whose header never reached the disk: created, nothing acknowledged in it.
                configuration.log(.warning, "journal: \(name) has no complete header (\(size) bytes); removed")
                unlink(path)
                return nil
            }
            throw StoreError(
                .journalCorrupt, message: "segment \(name) has no valid header. \(advice)",
                context: "journal recovery")
        }
        if let expectedFirst, firstLSN != expectedFirst {
            guard scan.flags & JournalFormat.followsGapFlag != 0, firstLSN > expectedFirst else {
                throw StoreError(
                    .journalCorrupt,
                    message: "segment \(name) starts at LSN \(firstLSN), expected \(expectedFirst) "
                        + "(a segment is missing). \(advice)", context: "journal recovery")
            }
        }
        var end = size
        var intact = true
        if let damage = scan.damage.first {
            guard isLast && damage.nextLSN == nil else {
                throw StoreError(
                    .journalCorrupt,
                    message: "segment \(name) is damaged at offset \(damage.offset) (the entry after LSN "
                        + "\(damage.afterLSN) fails its length or CRC check and valid entries follow). \(advice)",
                    context: "journal recovery")
            }
            configuration.log(
                .warning,
                "journal: cut a torn entry at the tail of \(name): \(damage.length) bytes at offset "
                    + "\(damage.offset) after LSN \(damage.afterLSN) (the bytes of a write the crash interrupted; "
                    + "under store.durability disk such an entry was never acknowledged, under process one "
                    + "acknowledged before a power loss can be lost here); the next segment starts past every "
                    + "LSN this one could have held")
            truncate(path, off_t(damage.offset))
            end = damage.offset
            intact = false
        }
        for entry in scan.entries where entry.lsn > replayAfter[entry.region] ?? 0 {
            recovered[entry.region, default: []].append(
                JournalEntry(
                    segment: segment, lsn: entry.lsn, kind: entry.kind, arrivalMs: entry.arrivalMs,
                    payloadOffset: entry.payloadOffset, payloadCount: entry.payloadCount, entryBytes: entry.length,
                    durableNs: 0))
        }
        segment.size.store(end, ordering: .relaxed)
        segment.lastLSN.store(scan.lastLSN, ordering: .relaxed)
        return (segment, intact)
    }

    static func syncDirectory(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "open \(path)")
        }
        defer { close(fd) }
        if fsync(fd) != 0 {
            throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "fsync \(path)")
        }
    }

    /// Sets the regions, once, before any applier or the writer thread runs.
    func attach(regions: [Region: RegionWriter]) {
        self.regions = regions
    }

    /// Starts the writer thread (after `attach(regions:)`).
    func start(notifyAppliers: @escaping @Sendable ([RegionWriter]) -> Void) {
        self.notifyAppliers = notifyAppliers
        stats.withLock { $0.lastProgressNs = StoreClock.monotonicNs() }
        let thread = Thread { [self] in
            ThreadName.setCurrent("horgos-journal")
            self.run()
        }
        thread.name = "horgos-journal"
        thread.start()
    }

    var statistics: JournalStatistics {
        var s = stats.withLock { $0 }
        s.diskBytes = diskBytes.load(ordering: .relaxed)
        s.segments = segments.withLock { $0.count }
        s.durableLSN = deliveredLSN.load(ordering: .relaxed)
        return s
    }

    /// Queues a submission; throws when the journal failed or is stopping.
    func submit(_ submission: JournalSubmission) throws(StoreError) {
        condition.lock()
        defer { condition.unlock() }
        if failed {
            throw StoreError(.journalFailed, message: "the journal stopped after a write failure", context: "submit")
        }
        if stopping { throw StoreError(.stopped, message: "journal stopped", context: "submit") }
        queue.append(submission)
        if writerWaiting && queue.count == 1 { condition.signal() }
    }

    /// Wakes the writer (an applier made room for held submissions).
    func wake() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    /// Stops taking submissions, writes what is queued, and waits for the thread.
    func stop(timeoutMs: Int) {
        condition.lock()
        stopping = true
        stopDeadlineNs = StoreClock.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        condition.broadcast()
        condition.unlock()
        finished.wait()
        finished.signal()
    }

    /// Gives the state directory's lock back (after `stop()` and the appliers' last retire).
    func releaseLock() {
        lock.release()
    }

    private func take(waitMs: Int) -> [JournalSubmission] {
        condition.lock()
        defer { condition.unlock() }
        if queue.isEmpty && !stopping {
            writerWaiting = true
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitMs) / 1000))
            writerWaiting = false
        }
        let taken = queue
        queue.removeAll(keepingCapacity: true)
        return taken
    }

    private var isStopping: (stopping: Bool, pastDeadline: Bool) {
        condition.lock()
        defer { condition.unlock() }
        return (stopping, stopping && StoreClock.monotonicNs() >= stopDeadlineNs)
    }

    // MARK: the writer thread

    private func run() {
        var held: [Region: [JournalSubmission]] = [:]
        var heldCount = 0
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        let maxDelayNs = UInt64(max(0, configuration.journalMaxDelayMicroseconds)) * 1000
        let holds = hooks.holds
        while true {
            // A wedged store (test hook) acknowledges nothing more and stops marking progress.
            WriterTestHooks.sleepWhileWedged()
            var batch = take(waitMs: heldCount > 0 ? 20 : 1000)
            if maxDelayNs > 0, let first = batch.first {
                let until = first.submittedNs + maxDelayNs
                let now = StoreClock.monotonicNs()
                if until > now { usleep(UInt32(min((until - now) / 1000, 1_000_000))) }
                batch += take(waitMs: 0)
            }
            stats.withLock { $0.lastProgressNs = StoreClock.monotonicNs() }
            let (stoppingNow, pastDeadline) = isStopping
            if stoppingNow && batch.isEmpty && (heldCount == 0 || pastDeadline) { break }

            // A full disk: frames wait (in order) until a look for space, once a second, finds it.
            if isDiskFull && spaceIsBack() { leaveDiskFull(waiting: heldCount + batch.count) }
            if isDiskFull {
                for s in batch { held[s.region.region, default: []].append(s) }
                heldCount += batch.count
                let heldNow = heldCount
                stats.withLock { $0.heldSubmissions = heldNow }
                continue
            }

            // Admission: a region's frames wait (in order) while it is over its unapplied-bytes bound or
            // the journal is at `journalMaxBytes`; the sessions then stop reading (backpressure).
            var ready: [JournalSubmission] = []
            var plannedBytes = diskBytes.load(ordering: .relaxed)
            var plannedRegion: [Region: Int] = [:]
            func admissible(_ s: JournalSubmission) -> Bool {
                let unapplied =
                    s.region.unappliedBytes.load(ordering: .relaxed) + plannedRegion[s.region.region, default: 0]
                let regionOK = unapplied == 0 || unapplied + s.entryBytes <= configuration.maxQueuedBytes
                let diskOK = plannedBytes + s.entryBytes <= configuration.journalMaxBytes
                // Issue 20: a region too far from being published waits too (stream.max_lag_bytes).
                return regionOK && diskOK && holds.allSatisfy { $0.admits(s.region.region) }
            }
            func admit(_ s: JournalSubmission) {
                ready.append(s)
                plannedBytes += s.entryBytes
                plannedRegion[s.region.region, default: 0] += s.entryBytes
            }
            for region in held.keys.sorted() {
                var list = held[region]!
                var released = 0
                while released < list.count && admissible(list[released]) {
                    admit(list[released])
                    released += 1
                }
                list.removeFirst(released)
                heldCount -= released
                held[region] = list.isEmpty ? nil : list
            }
            for s in batch {
                if held[s.region.region] == nil && admissible(s) {
                    admit(s)
                } else {
                    held[s.region.region, default: []].append(s)
                    heldCount += 1
                }
            }
            if heldCount > 0 { checkpointRequested.store(true, ordering: .relaxed) }
            batch.removeAll()
            if !ready.isEmpty {
                switch writeRound(ready, buffer: &buffer) {
                case .durable:
                    break
                case .diskFull(let unwritten, let error):
                    // Back to the head of their regions' queues, in order: nothing was acknowledged.
                    var byRegion: [Region: [JournalSubmission]] = [:]
                    for s in unwritten { byRegion[s.region.region, default: []].append(s) }
                    for (region, list) in byRegion { held[region] = list + (held[region] ?? []) }
                    heldCount += unwritten.count
                    enterDiskFull(error)
                case .failed:
                    finished.signal()
                    return
                }
            }
            let heldNow = heldCount
            stats.withLock { $0.heldSubmissions = heldNow }
        }
        // Stopping (or failed): held submissions are never acknowledged; their units resend them.
        finished.signal()
    }

    /// What became of a round.
    private enum RoundOutcome {
        /// Every entry is durable, delivered and acknowledged.
        case durable
        /// The file system is full: these submissions (in order, from the first not written) wait; the
        /// ones before them are durable and acknowledged.
        case diskFull([JournalSubmission], StoreError)
        /// A write or fdatasync failed: the journal is failed for good.
        case failed
    }

    /// Entries of one segment written and durable in a round.
    private struct DurablePiece {
        let segment: JournalSegment
        let submissions: [JournalSubmission]
        let firstLSN: UInt64
    }

    /// Writes one round, makes it durable, delivers the entries and runs the completions. A write that
    /// fails for lack of space is cut back off the file and its submissions returned (`diskFull`); any
    /// other failure fails the journal.
    private func writeRound(_ ready: [JournalSubmission], buffer: inout [UInt8]) -> RoundOutcome {
        let sync = configuration.durability == .disk
        var pieces: [DurablePiece] = []
        var current: [JournalSubmission] = []
        var firstLSN = nextLSN
        var taken = 0
        var syncs = 0
        var written = 0
        buffer.removeAll(keepingCapacity: true)
        func writeOut(_ segment: JournalSegment) throws(StoreError) {
            if !buffer.isEmpty {
                let before = segment.size.load(ordering: .relaxed)
                let ok = buffer.withUnsafeBytes { JournalSegment.writeFully(segment.fd, $0) }
                if !ok {
                    let code = errno
                    // Cut the part of the round that reached the file: the next attempt (or a crash
                    // now, as a torn tail) finds the segment ending at its last whole round.
                    guard JournalDiskSpace.isOutOfSpace(code), segment.truncate(to: before) else {
                        throw StoreError(
                            .journalFailed, message: String(cString: strerror(code)), context: "write \(segment.path)")
                    }
                    buffer.removeAll(keepingCapacity: true)
                    throw StoreError(
                        .diskFull, message: String(cString: strerror(code)), context: "write \(segment.path)")
                }
                segment.size.add(buffer.count, ordering: .relaxed)
                diskBytes.add(buffer.count, ordering: .relaxed)
                written += buffer.count
                buffer.removeAll(keepingCapacity: true)
            }
            if sync {
                if fdatasync(segment.fd) != 0 {
                    throw StoreError(
                        .journalFailed, message: String(cString: strerror(errno)),
                        context: "fdatasync \(segment.path) (never retried)")
                }
                syncs += 1
            }
            if !current.isEmpty {
                pieces.append(DurablePiece(segment: segment, submissions: current, firstLSN: firstLSN))
            }
            current = []
            firstLSN = nextLSN
        }
        var outcome = RoundOutcome.durable
        do throws(StoreError) {
            var segment: JournalSegment
            if let active { segment = active } else { segment = try createActiveSegment() }
            firstLSN = nextLSN
            for s in ready {
                let size = segment.size.load(ordering: .relaxed)
                if size + buffer.count + s.entryBytes > configuration.journalSegmentBytes
                    && size + buffer.count > JournalFormat.segmentHeaderSize
                {
                    try writeOut(segment)
                    segment = try createActiveSegment()
                    checkpointRequested.store(true, ordering: .relaxed)
                }
                s.bytes.withUnsafeBytes { payload in
                    JournalFormat.appendEntry(
                        to: &buffer, lsn: nextLSN, kind: s.kind.rawValue, region: s.region.region,
                        arrivalMs: s.arrivalMs, context: s.context, payload: payload)
                }
                nextLSN += 1
                current.append(s)
                taken += 1
            }
            try writeOut(segment)
        } catch where error.kind == .diskFull {
            // Nothing from the failed piece on was written: its LSNs go to the same entries next time.
            nextLSN = firstLSN
            buffer.removeAll(keepingCapacity: true)
            outcome = .diskFull(current + ready[taken...], error)
        } catch {
            fail(error)
            return .failed
        }
        deliver(pieces, syncs: syncs, written: written)
        return outcome
    }

    /// Hands durable entries to their regions' appliers, then runs the completions (the ACKs).
    private func deliver(_ pieces: [DurablePiece], syncs: Int, written: Int) {
        guard !pieces.isEmpty else { return }
        let now = StoreClock.monotonicNs()
        var byRegion: [Region: (RegionWriter, [JournalEntry])] = [:]
        var lastLSN: UInt64 = 0
        var count = 0
        let gate = hooks.gate
        var gated: [GatedCompletion] = []
        for piece in pieces {
            var offset =
                piece.segment.size.load(ordering: .relaxed) - piece.submissions.reduce(0) { $0 + $1.entryBytes }
            var lsn = piece.firstLSN
            for s in piece.submissions {
                let entry = JournalEntry(
                    segment: piece.segment, lsn: lsn, kind: s.kind.rawValue, arrivalMs: s.arrivalMs,
                    payloadOffset: offset + JournalFormat.entryHeaderSize + s.context.count,
                    payloadCount: s.entryBytes - JournalFormat.entryOverhead - s.context.count,
                    entryBytes: s.entryBytes, durableNs: now, followed: s.context.first == FollowedOrigin.tag)
                byRegion[s.region.region, default: (s.region, [])].1.append(entry)
                if gate != nil {
                    gated.append(GatedCompletion(lsn: lsn, region: s.region.region) { s.completion(s.outcome) })
                }
                offset += s.entryBytes
                lastLSN = lsn
                lsn += 1
            }
            piece.segment.lastLSN.store(lsn - 1, ordering: .relaxed)
            count += piece.submissions.count
        }
        for (writer, entries) in byRegion.values { writer.deliver(entries) }
        deliveredLSN.store(lastLSN, ordering: .releasing)
        stats.withLock { s in
            s.rounds += 1
            s.fdatasyncs += syncs
            s.entries += count
            s.bytesWritten += written
        }
        var oldest: [ObjectIdentifier: UInt64] = [:]
        for piece in pieces {
            for s in piece.submissions {
                // `replicated` (issue 20): the gate runs each completion once the stream has the entry.
                if gate == nil { s.completion(s.outcome) }
                let id = ObjectIdentifier(s.region)
                if oldest[id] == nil { oldest[id] = s.submittedNs }
            }
        }
        gate?.hold(gated)
        hooks.durable?(lastLSN)
        for (writer, entries) in byRegion.values {
            writer.recordAcknowledged(
                entries.count, oldestSubmittedNs: oldest[ObjectIdentifier(writer)] ?? now, nowNs: now)
        }
        notifyAppliers(byRegion.values.map(\.0))
    }

    private func fail(_ error: StoreError) {
        condition.lock()
        failed = true
        condition.unlock()
        stats.withLock { $0.failure = error.description }
        let why =
            error.context.hasPrefix("fdatasync")
            ? "a failed fdatasync is never retried on the same file: the kernel may have dropped the pages"
            : "a journal write failed with an I/O error, not for lack of space; nothing of the failed round "
                + "was acknowledged"
        configuration.log(
            .error, "journal: \(error); acknowledging nothing more (\(why)). Restart to replay the journal.")
        configuration.onJournalFailure(error)
    }

    // MARK: disk full

    /// Whether the journal is in the disk-full state.
    var isDiskFull: Bool { stats.withLock { $0.diskFull != nil } }

    /// Enters (or stays in) the disk-full state: gives the reserve back so the appliers can apply and
    /// checkpoint (which lets applied segments go), asks for that checkpoint, and logs once.
    private func enterDiskFull(_ error: StoreError) {
        let released = reserve.release()
        nextSpaceProbeNs = StoreClock.monotonicNs() + 1_000_000_000
        checkpointRequested.store(true, ordering: .relaxed)
        let now = configuration.clock()
        let entered = stats.withLock { s in
            s.reserveBytes = 0
            guard s.diskFull == nil else { return false }
            s.diskFull = error.description
            s.diskFullSinceMs = now
            s.diskFullEpisodes += 1
            return true
        }
        guard entered else { return }
        configuration.log(
            .error,
            "journal: the file system is full (\(error)); acknowledging nothing until space is back: frames wait "
                + "(backpressure), none is dropped"
                + (released > 0 ? "; released the \(released)-byte reserve so the shards can be checkpointed" : "")
                + " (see Deploy/RUNBOOK.md 'Disk full')")
    }

    /// While full, once a second: whether space is back (twice the reserve free, or 1 MiB without a
    /// reserve; the reserve taken back and a segment to append to), so the journal writes again.
    private func spaceIsBack() -> Bool {
        let now = StoreClock.monotonicNs()
        guard now >= nextSpaceProbeNs else { return false }
        nextSpaceProbeNs = now + 1_000_000_000
        guard let free = JournalDiskSpace.availableBytes(directory), free >= max(2 * reserve.bytes, 1 << 20),
            reserve.take()
        else { return false }
        let held = reserve.bytes
        stats.withLock { $0.reserveBytes = held }
        if active == nil {
            do { try createActiveSegment() } catch {
                return false
            }
        }
        return true
    }

    /// Leaves the disk-full state: space is back (a round that then fails enters it again).
    private func leaveDiskFull(waiting: Int) {
        let since = stats.withLock { s in
            defer {
                s.diskFull = nil
                s.diskFullSinceMs = nil
            }
            return s.diskFullSinceMs
        }
        let seconds = since.map { Double(configuration.clock() - $0) / 1000 } ?? 0
        let free = JournalDiskSpace.availableBytes(directory) ?? 0
        configuration.log(
            .info,
            "journal: space is back (\(free >> 20) MiB free) after \(Int(seconds)) s; writing and acknowledging "
                + "again (\(waiting) frames waited)")
    }

    // MARK: retention

    /// About once a second (called by every applier thread, rate-limited here): writes
    /// `journal/applied`, per region the LSN up to which everything is applied: the delivered LSN for a
    /// region with nothing unapplied, its applied LSN otherwise. No fsync: it serves a start after a
    /// daemon crash in the same boot, which then skips what is applied (`DurableLSNFile.appliedFileName`).
    func recordApplied() {
        let now = StoreClock.monotonicNs()
        let due = nextAppliedRecordNs.withLock { next in
            guard now >= next else { return false }
            next = now + 1_000_000_000
            return true
        }
        guard due else { return }
        // Delivered first: an entry delivered up to it was counted as unapplied before (release/acquire).
        let delivered = deliveredLSN.load(ordering: .acquiring)
        var lsns: [Region: UInt64] = [:]
        for (region, writer) in regions {
            lsns[region] =
                writer.unappliedBytes.load(ordering: .acquiring) == 0 ? delivered : writer.statistics.appliedLSN
        }
        try? DurableLSNFile.write(directory: directory, lsns: lsns, name: DurableLSNFile.appliedFileName, sync: false)
    }

    /// Writes the regions' durable LSNs and deletes the segments every region has made durable in its
    /// shards (never the segment being appended to). Called by the appliers after a durability round.
    func retire() {
        retireLock.withLock { _ in
            var lsns: [Region: UInt64] = [:]
            for (region, writer) in regions { lsns[region] = writer.durableLSN.load(ordering: .acquiring) }
            guard let applied = lsns.values.min() else { return }
            // Issue 20: and every hold (the stream publisher's published LSN) is past it.
            let floor = hooks.holds.reduce(applied) { min($0, $1.heldLSN) }
            do throws(StoreError) {
                try DurableLSNFile.write(directory: directory, lsns: lsns)
                lastDurableFileError = nil
            } catch {
                // Still safe to delete below: those entries are in fsynced shards; a stale file only
                // makes a replay after a reboot start earlier. Logged once per distinct error.
                if lastDurableFileError != error.message {
                    lastDurableFileError = error.message
                    configuration.log(.warning, "journal: cannot write the durable-LSN file: \(error)")
                }
            }
            let doomed: [JournalSegment] = segments.withLock { list in
                var doomed: [JournalSegment] = []
                while list.count > 1, let first = list.first,
                    first.lastLSN.load(ordering: .relaxed) <= floor
                {
                    doomed.append(list.removeFirst())
                }
                return doomed
            }
            for segment in doomed {
                unlink(segment.path)
                diskBytes.subtract(segment.size.load(ordering: .relaxed), ordering: .relaxed)
            }
            if !doomed.isEmpty { wake() }
        }
    }
}
