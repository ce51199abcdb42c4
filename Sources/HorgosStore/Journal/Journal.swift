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
    /// Frames held back (their sessions see backpressure) because of `journal.max_bytes` or a region's
    /// unapplied-bytes bound, now.
    public var heldSubmissions = 0
    /// Monotonic ns of the writer loop's last turn (it turns at least once a second).
    public var lastProgressNs: UInt64 = 0
    /// Set once a write or fdatasync failed: nothing more is acknowledged.
    public var failure: String?
}

/// The ingest journal: one append-only log for every region, written by one thread with group commit
/// by natural batching, and the source of truth for everything acknowledged.
///
/// While one round's `write` + `fdatasync` runs, submissions queue; the next round takes all of them
/// (no fixed sleep; `journalMaxDelayMicroseconds` optionally waits a little for more). After the round
/// is durable (`disk`: fdatasync returned; `process`: write returned) its entries are handed to their
/// regions' appliers and then the completions run (the caller ACKs). A failed write or fdatasync is
/// never retried on the same file: the journal stops acknowledging, logs, and calls
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
    /// Live segments, oldest first; the last is the one being appended to.
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
    /// The regions, set once before `start()`.
    private(set) var regions: [Region: RegionWriter] = [:]
    /// Called after entries were delivered to these regions (wakes their applier threads).
    private var notifyAppliers: @Sendable ([RegionWriter]) -> Void = { _ in }
    private let finished = DispatchSemaphore(value: 0)
    private let retireLock = Mutex(())
    /// What the durability file said at start.
    let durableAtStart: DurableLSNFile.Contents
    /// Entries found at start, per region, oldest first.
    private(set) var recovered: [Region: [JournalEntry]] = [:]

    var segmentCapacity: Int { Self.segmentCapacity(configuration) }

    /// Address space mapped per segment: the nominal size plus one largest entry (a round may pass
    /// the nominal size by its last entry).
    static func segmentCapacity(_ configuration: StoreConfiguration) -> Int {
        configuration.journalSegmentBytes + JournalFormat.maxPayloadBytes + 70_000
    }

    /// Opens (and creates) the journal directory, reads every segment (cutting a torn tail, refusing
    /// damage in the middle) and starts a new segment after the last entry found.
    /// `floorLSN` is the highest LSN any region's shards say they applied: the next LSN is above it
    /// even if the journal directory was emptied.
    init(configuration: StoreConfiguration, floorLSN: UInt64) throws(StoreError) {
        self.configuration = configuration
        directory = "\(configuration.stateDirectory)/journal"
        try StoreFiles.createDirectory(directory)
        durableAtStart = DurableLSNFile.read(directory: directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let found = names.compactMap { name in JournalFormat.firstLSN(segmentFileName: name).map { (name, $0) } }
            .sorted { $0.1 < $1.1 }
        var live: [JournalSegment] = []
        var lastLSN: UInt64 = 0
        var total = 0
        for (index, (name, first)) in found.enumerated() {
            let path = "\(directory)/\(name)"
            let isLast = index == found.count - 1
            guard
                let segment = try Self.recover(
                    path: path, firstLSN: first, expectedFirst: lastLSN == 0 ? nil : lastLSN + 1, isLast: isLast,
                    configuration: configuration, into: &recovered)
            else { continue }
            if segment.lastLSN.load(ordering: .relaxed) >= segment.firstLSN {
                lastLSN = segment.lastLSN.load(ordering: .relaxed)
            } else if lastLSN == 0 {
                lastLSN = first &- 1
            }
            if isLast && segment.lastLSN.load(ordering: .relaxed) < segment.firstLSN {
                // The last segment holds no entry (a start that wrote nothing): the new active segment starts at
                // the same LSN, so it has the same file name. Keeping this one would put two segments on one
                // path, and retiring the empty one would unlink the live one under the writer.
                unlink(path)
                continue
            }
            total += segment.size.load(ordering: .relaxed)
            live.append(segment)
        }
        nextLSN = max(lastLSN, floorLSN, durableAtStart.lsns.values.max() ?? 0) + 1
        deliveredLSN = Atomic(nextLSN - 1)
        let active = try JournalSegment.create(
            directory: directory, firstLSN: nextLSN, capacity: Self.segmentCapacity(configuration))
        try Self.syncDirectory(directory)
        live.append(active)
        total += active.size.load(ordering: .relaxed)
        diskBytes.store(total, ordering: .relaxed)
        segments = Mutex(live)
        let entries = recovered.values.reduce(0) { $0 + $1.count }
        if !found.isEmpty {
            configuration.log(
                .info,
                "journal: \(found.count) segment(s) read, \(entries) entries, last LSN \(nextLSN - 1); "
                    + "replaying what the regions have not applied")
        }
    }

    /// Reads one segment at start; entries go to `recovered`.
    private static func recover(
        path: String, firstLSN: UInt64, expectedFirst: UInt64?, isLast: Bool, configuration: StoreConfiguration,
        into recovered: inout [Region: [JournalEntry]]
    ) throws(StoreError) -> JournalSegment? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let advice =
            "The journal holds acknowledged frames that may not be in the shards yet. Keep a copy of "
            + "the journal directory, then either restore the segment from a backup, or move the damaged "
            + "segment and every later one out of the journal directory to start without them (frames after "
            + "the damage are then lost unless their units resend them); see Deploy/RUNBOOK.md, 'Journal damaged'."
        if let expectedFirst, firstLSN != expectedFirst {
            throw StoreError(
                .journalCorrupt, message: "segment \(name) starts at LSN \(firstLSN), expected \(expectedFirst) "
                    + "(a segment is missing). \(advice)", context: "journal recovery")
        }
        let segment = try JournalSegment.openExisting(path: path, firstLSN: firstLSN)
        let size = segment.size.load(ordering: .relaxed)
        let all = segment.bytes(0, size)
        guard size >= JournalFormat.segmentHeaderSize,
            Array(all[0..<8]) == JournalFormat.segmentMagic
        else {
            if isLast {
                // A segment whose header never reached the disk: created, nothing acknowledged in it.
                configuration.log(.warning, "journal: \(name) has no complete header (\(size) bytes); removed")
                unlink(path)
                return nil
            }
            throw StoreError(.journalCorrupt, message: "segment \(name) has no valid header. \(advice)",
                context: "journal recovery")
        }
        var offset = JournalFormat.segmentHeaderSize
        var lsn = firstLSN
        while offset < size {
            guard let entry = JournalFormat.decodeEntry(all, at: offset), entry.lsn == lsn,
                JournalEntryKind(rawValue: entry.kind) != nil
            else {
                if isLast && !containsLaterEntry(all, after: offset, lsn: lsn) {
                    let cut = size - offset
                    configuration.log(
                        .warning,
                        "journal: cut a torn entry at the tail of \(name): \(cut) bytes at offset \(offset) "
                            + "after LSN \(lsn - 1) (a write the crash interrupted; it was never acknowledged)")
                    truncate(path, off_t(offset))
                    break
                }
                throw StoreError(
                    .journalCorrupt,
                    message: "segment \(name) is damaged at offset \(offset) (the entry after LSN \(lsn - 1) "
                        + "fails its length or CRC check and valid entries follow). \(advice)",
                    context: "journal recovery")
            }
            recovered[entry.region, default: []].append(
                JournalEntry(
                    segment: segment, lsn: entry.lsn, kind: entry.kind, arrivalMs: entry.arrivalMs,
                    payloadOffset: entry.payloadOffset, payloadCount: entry.payloadCount, entryBytes: entry.length,
                    durableNs: 0))
            offset += entry.length
            lsn += 1
        }
        segment.size.store(min(offset, size), ordering: .relaxed)
        segment.lastLSN.store(lsn - 1, ordering: .relaxed)
        return segment
    }

    /// Whether a valid entry with a higher LSN starts anywhere after `offset` (then the bad entry is
    /// damage in the middle, not a torn tail).
    private static func containsLaterEntry(_ bytes: UnsafeRawBufferPointer, after offset: Int, lsn: UInt64) -> Bool {
        var candidate = offset + 1
        while candidate + JournalFormat.entryOverhead <= bytes.count {
            let found = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: candidate + 4, as: UInt64.self))
            if found >= lsn && found < lsn + 100_000_000, let entry = JournalFormat.decodeEntry(bytes, at: candidate),
                entry.lsn == found
            {
                return true
            }
            candidate += 1
        }
        return false
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
        let thread = Thread { [self] in self.run() }
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
                return regionOK && diskOK
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
            let heldNow = heldCount
            stats.withLock { $0.heldSubmissions = heldNow }
            batch.removeAll()
            if ready.isEmpty { continue }
            if !writeRound(ready, buffer: &buffer) { break }
        }
        // Stopping (or failed): held submissions are never acknowledged; their units resend them.
        finished.signal()
    }

    /// Writes one round, makes it durable, delivers the entries and runs the completions. False when a
    /// write or fdatasync failed (the journal is then failed for good).
    private func writeRound(_ ready: [JournalSubmission], buffer: inout [UInt8]) -> Bool {
        let sync = configuration.durability == .disk
        var active = segments.withLock { $0.last! }
        var pieces: [(JournalSegment, [JournalSubmission], UInt64)] = []  // segment, submissions, first LSN
        var current: [JournalSubmission] = []
        var firstLSN = nextLSN
        var syncs = 0
        var written = 0
        buffer.removeAll(keepingCapacity: true)
        do {
            func flush(_ segment: JournalSegment) throws(StoreError) {
                guard !buffer.isEmpty else { return }
                let ok = buffer.withUnsafeBytes { JournalSegment.writeFully(segment.fd, $0) }
                if !ok {
                    throw StoreError(
                        .fileSystem, message: String(cString: strerror(errno)), context: "write \(segment.path)")
                }
                segment.size.add(buffer.count, ordering: .relaxed)
                diskBytes.add(buffer.count, ordering: .relaxed)
                written += buffer.count
                buffer.removeAll(keepingCapacity: true)
            }
            func durable(_ segment: JournalSegment) throws(StoreError) {
                guard sync else { return }
                if fdatasync(segment.fd) != 0 {
                    throw StoreError(
                        .journalFailed, message: String(cString: strerror(errno)), context: "fdatasync \(segment.path)")
                }
                syncs += 1
            }
            for s in ready {
                let size = active.size.load(ordering: .relaxed)
                if size + buffer.count + s.entryBytes > configuration.journalSegmentBytes
                    && size + buffer.count > JournalFormat.segmentHeaderSize
                {
                    try flush(active)
                    try durable(active)
                    if !current.isEmpty { pieces.append((active, current, firstLSN)) }
                    current = []
                    let next = try JournalSegment.create(
                        directory: directory, firstLSN: nextLSN, capacity: segmentCapacity)
                    diskBytes.add(next.size.load(ordering: .relaxed), ordering: .relaxed)
                    if sync { try Self.syncDirectory(directory) }
                    segments.withLock { $0.append(next) }
                    active = next
                    firstLSN = nextLSN
                    checkpointRequested.store(true, ordering: .relaxed)
                }
                s.bytes.withUnsafeBytes { payload in
                    JournalFormat.appendEntry(
                        to: &buffer, lsn: nextLSN, kind: s.kind.rawValue, region: s.region.region,
                        arrivalMs: s.arrivalMs, context: s.context, payload: payload)
                }
                nextLSN += 1
                current.append(s)
            }
            try flush(active)
            try durable(active)
            if !current.isEmpty { pieces.append((active, current, firstLSN)) }
        } catch {
            fail(error)
            return false
        }
        // Durable: hand the entries to the appliers, then acknowledge.
        let now = StoreClock.monotonicNs()
        var byRegion: [Region: (RegionWriter, [JournalEntry])] = [:]
        var lastLSN: UInt64 = 0
        for (segment, submissions, first) in pieces {
            var offset = segment.size.load(ordering: .relaxed) - submissions.reduce(0) { $0 + $1.entryBytes }
            var lsn = first
            for s in submissions {
                let entry = JournalEntry(
                    segment: segment, lsn: lsn, kind: s.kind.rawValue, arrivalMs: s.arrivalMs,
                    payloadOffset: offset + JournalFormat.entryHeaderSize + s.context.count,
                    payloadCount: s.entryBytes - JournalFormat.entryOverhead - s.context.count,
                    entryBytes: s.entryBytes, durableNs: now)
                byRegion[s.region.region, default: (s.region, [])].1.append(entry)
                offset += s.entryBytes
                lastLSN = lsn
                lsn += 1
            }
            segment.lastLSN.store(lsn - 1, ordering: .relaxed)
        }
        for (writer, entries) in byRegion.values { writer.deliver(entries) }
        deliveredLSN.store(lastLSN, ordering: .releasing)
        let count = ready.count
        stats.withLock { s in
            s.rounds += 1
            s.fdatasyncs += syncs
            s.entries += count
            s.bytesWritten += written
        }
        for s in ready { s.completion(s.outcome) }
        for (writer, entries) in byRegion.values {
            let oldest = ready.first { $0.region === writer }!.submittedNs
            writer.recordAcknowledged(entries.count, oldestSubmittedNs: oldest, nowNs: now)
        }
        notifyAppliers(byRegion.values.map(\.0))
        return true
    }

    private func fail(_ error: StoreError) {
        condition.lock()
        failed = true
        condition.unlock()
        stats.withLock { $0.failure = error.description }
        configuration.log(
            .error,
            "journal: \(error); acknowledging nothing more (a failed fdatasync is never retried on the same "
                + "file: the kernel may have dropped the pages). Restart to replay the journal.")
        configuration.onJournalFailure(error)
    }

    // MARK: retention

    /// Writes the regions' durable LSNs and deletes the segments every region has made durable in its
    /// shards (never the segment being appended to). Called by the appliers after a durability round.
    func retire() {
        retireLock.withLock { _ in
            var lsns: [Region: UInt64] = [:]
            for (region, writer) in regions { lsns[region] = writer.durableLSN.load(ordering: .acquiring) }
            guard let floor = lsns.values.min() else { return }
            do {
                try DurableLSNFile.write(directory: directory, lsns: lsns)
            } catch {
                configuration.log(.warning, "journal: cannot write the durable-LSN file: \(error)")
                return
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
