import Foundation
import HorgosWire
import Synchronization

/// Applies one region's acknowledged journal entries to its shards, on one thread of the applier pool.
///
/// Entries wait `applyIntervalMs` from when they became durable (or until `commitMaxRows` rows wait),
/// then go into the shards in one transaction per `commitMaxRows` rows; the registry is updated once
/// per vehicle per transaction, and the transaction stores the last LSN applied in the registry's
/// `meta`. Entries at or below the applied LSN are skipped, which makes replay idempotent (and the
/// partitions' (VIN, time) uniqueness covers a crash between the partitions' and the registry's
/// commits). On a fault the transaction is rolled back, the entries kept, and the attempt retried with
/// backoff; a damaged file is quarantined (moved aside) and the region goes on with a fresh one.
final class RegionApplier {
    let writer: RegionWriter
    let configuration: StoreConfiguration
    private let engine: RegionEngine
    private var pending: [JournalEntry] = []
    private var head = 0
    private var pendingRows = 0
    /// Entries with an LSN at or below this are in the shards already.
    private var appliedLSN: UInt64 = 0
    private var openedOnce = false
    private var retryAtNs: UInt64 = 0
    private var backoffMs: Int
    private var nextDurabilityNs: UInt64 = 0
    private var seenCheckpointRequest = false
    /// Set while the entries found in the journal at start are being replayed: once they are applied,
    /// the region makes its shards durable at once, so the segments the replay read can go and the
    /// next start (a crash loop) does not read them again.
    private var durableAfterReplay = false

    init(writer: RegionWriter, configuration: StoreConfiguration, recovered: [JournalEntry]) {
        self.writer = writer
        self.configuration = configuration
        self.engine = RegionEngine(region: writer.region, configuration: configuration)
        self.backoffMs = configuration.retryDelayMs
        if !recovered.isEmpty {
            writer.deliver(recovered, toInbox: false)
            append(recovered)
            durableAfterReplay = true
        }
        nextDurabilityNs = StoreClock.monotonicNs() + UInt64(configuration.durabilityIntervalMs) * 1_000_000
    }

    var hasPending: Bool { head < pending.count }

    private func append(_ entries: [JournalEntry]) {
        for entry in entries {
            pending.append(entry)
            pendingRows += Self.rows(entry)
        }
    }

    private static func rows(_ entry: JournalEntry) -> Int {
        guard entry.kind == JournalEntryKind.telemetry.rawValue, entry.payloadCount >= WireFormat.telemetryHeaderSize
        else { return 1 }
        return Int(UInt16(littleEndian: entry.payload.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
    }

    /// One turn: takes what the journal delivered, applies it when due, keeps the shards durable.
    /// Returns the monotonic time it next has something to do.
    func turn(nowNs: UInt64, stopping: Bool) -> UInt64 {
        let delivered = writer.inbox.withLock { inbox -> [JournalEntry] in
            let taken = inbox
            inbox.removeAll(keepingCapacity: true)
            return taken
        }
        append(delivered)
        writer.updateStatistics { $0.lastProgressNs = nowNs }
        let damaged = writer.takeQuarantineRequests()
        if !damaged.isEmpty { quarantine(damaged) }
        if nowNs < retryAtNs { return retryAtNs }
        if !engine.isOpen && !open() { return retryAtNs }
        if writer.journal.appliersPaused.load(ordering: .relaxed) { return nowNs + 20_000_000 }
        if hasPending {
            let due = pending[head].durableNs + UInt64(max(0, configuration.applyIntervalMs)) * 1_000_000
            if stopping || nowNs >= due || pendingRows >= configuration.commitMaxRows {
                let applied = applyPending()
                if !applied { return retryAtNs }
            } else {
                return min(due, nowNs + 1_000_000_000)
            }
        }
        let requested = writer.journal.checkpointRequested.load(ordering: .relaxed)
        // Recovered entries come first in `pending`: the replay is done once the head is not one.
        let replayed = durableAfterReplay && (!hasPending || pending[head].durableNs != 0)
        if stopping || nowNs >= nextDurabilityNs || (requested && !seenCheckpointRequest) || replayed {
            seenCheckpointRequest = requested
            if makeDurable(nowNs: nowNs) { durableAfterReplay = false }
        }
        if !requested { seenCheckpointRequest = false }
        do { try engine.maintain(nowMs: configuration.clock()) } catch { fail(error, nowNs: nowNs) }
        if engine.erasuresAwaitScrub { engine.scrubErasedFiles() }
        return hasPending ? nowNs : nowNs + 1_000_000_000
    }

    private func open() -> Bool {
        do {
            try engine.open(nowMs: configuration.clock())
        } catch {
            fail(error, nowNs: StoreClock.monotonicNs())
            return false
        }
        if !openedOnce {
            openedOnce = true
            // After a reboot the shards' last commits (synchronous=NORMAL) may be gone: replay from the
            // LSN they were last fsynced at. After a daemon crash alone, the applied LSN is exact.
            appliedLSN = writer.journal.durableAtStart.replayAfter(writer.region, applied: engine.appliedLSN)
            if hasPending {
                // Entries found in the journal at start (not those acknowledged since).
                let replay = pending[head...].filter { $0.durableNs == 0 && $0.lsn > appliedLSN }.count
                if replay > 0 {
                    configuration.log(
                        .info, "\(writer.region): replaying \(replay) journal entries after LSN \(appliedLSN)")
                }
            }
        }
        writer.updateStatistics { $0.appliedLSN = max($0.appliedLSN, appliedLSN) }
        if !hasPending { writer.setState(.ok) }
        return true
    }

    /// Applies everything pending in transactions of up to `commitMaxRows` rows. False on a fault.
    private func applyPending() -> Bool {
        while hasPending {
            var index = head
            var rows = 0
            var lastLSN = appliedLSN
            var total = CommitOutcome()
            var events = 0
            var erased: [(lsn: UInt64, live: Bool)] = []
            do {
                try engine.begin()
                while index < pending.count && rows < configuration.commitMaxRows {
                    let entry = pending[index]
                    index += 1
                    guard entry.lsn > appliedLSN, let kind = JournalEntryKind(rawValue: entry.kind) else { continue }
                    let outcome = try engine.apply(kind, payload: entry.payload, arrivalMs: entry.arrivalMs)
                    if kind == .erase { erased.append((entry.lsn, entry.durableNs != 0 && !entry.followed)) }
                    if kind == .event { events += outcome.stored } else { total.stored += outcome.stored }
                    total.duplicates += outcome.duplicates
                    total.rejected += outcome.rejected
                    rows += Self.rows(entry)
                    lastLSN = entry.lsn
                }
                try engine.commit(nowMs: configuration.clock(), appliedLSN: lastLSN)
            } catch {
                fail(error, nowNs: StoreClock.monotonicNs())
                return false
            }
            var bytes = 0
            var doneRows = 0
            for entry in pending[head..<index] {
                bytes += entry.entryBytes
                doneRows += Self.rows(entry)
            }
            let done = index - head
            head = index
            pendingRows -= doneRows
            if head == pending.count {
                pending.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 4096 && head * 2 > pending.count {
                pending.removeFirst(head)
                head = 0
            }
            appliedLSN = max(appliedLSN, lastLSN)
            backoffMs = configuration.retryDelayMs
            let finished = StoreClock.monotonicNs()
            writer.recordApplied(
                entries: done, bytes: bytes, appliedLSN: appliedLSN,
                nextArrivalMs: hasPending ? pending[head].arrivalMs : nil
            ) { s in
                s.recordsStored += total.stored
                s.recordsDuplicate += total.duplicates
                s.recordsRejected += total.rejected
                s.eventsStored += events
                s.commits += 1
                s.lastProgressNs = finished
                s.lastCommitNs = finished
            }
            if !erased.isEmpty {
                // Nobody waits for a replayed tombstone (durableNs 0) or one a follower copied from the stream.
                for (report, tombstone) in zip(engine.finishErasures(nowMs: configuration.clock()), erased) {
                    var report = report
                    report.lsn = tombstone.lsn
                    writer.erasureApplied(report, live: tombstone.live)
                }
            }
            writer.setState(.ok)
            writer.journal.wake()
            do {
                try engine.checkpointLargeWALs()
            } catch {
                fail(error, nowNs: finished)
                return false
            }
        }
        return true
    }

    /// Checkpoints the region's files and, when complete, moves its durable LSN: every entry of the
    /// region at or below it is then in fsynced shard files, and journal segments below every region's
    /// durable LSN can go.
    @discardableResult
    private func makeDurable(nowNs: UInt64) -> Bool {
        nextDurabilityNs = nowNs + UInt64(configuration.durabilityIntervalMs) * 1_000_000
        guard engine.isOpen else { return false }
        // Read before looking at the inbox: an entry delivered after this read is either in the inbox
        // (below) or has a higher LSN.
        let delivered = writer.journal.deliveredLSN.load(ordering: .acquiring)
        let firstWaiting = writer.inbox.withLock { $0.first?.lsn }
        let covered: UInt64
        if hasPending {
            covered = pending[head].lsn - 1
        } else if let firstWaiting {
            covered = firstWaiting - 1
        } else {
            covered = delivered
        }
        do {
            guard try engine.checkpointForDurability() else { return false }
        } catch {
            fail(error, nowNs: nowNs)
            return false
        }
        if covered > writer.durableLSN.load(ordering: .relaxed) {
            writer.durableLSN.store(covered, ordering: .releasing)
            writer.updateStatistics { $0.durableLSN = covered }
        }
        return true
    }

    private func fail(_ error: StoreError, nowNs: UInt64) {
        let candidates = engine.candidateFileNames(nowMs: configuration.clock())
        engine.close()
        writer.updateStatistics {
            $0.failedAttempts += 1
            $0.lastProgressNs = nowNs
        }
        writer.setState(.degraded(fault: error.fault, message: error.description))
        if error.fault == .corrupt {
            // SQLite said a file it read or wrote is damaged: move it aside at once and go on with a
            // new one (only the files this engine touches are checked, never the older days).
            let moved = Quarantine.moveDamagedFiles(
                directory: StoreFiles.regionDirectory(configuration.stateDirectory, writer.region), names: candidates,
                region: writer.region, nowMs: configuration.clock(), log: configuration.log)
            if !moved.isEmpty {
                writer.recordQuarantined(moved)
                retryAtNs = 0
                backoffMs = configuration.retryDelayMs
                return
            }
        }
        retryAtNs = nowNs + UInt64(backoffMs) * 1_000_000
        backoffMs = min(backoffMs * 2, configuration.maxRetryDelayMs)
    }

    /// The integrity check found these files damaged: close, move them aside, and go on with new ones
    /// at once (the next turn reopens), as after a write SQLite reported as corrupt.
    private func quarantine(_ names: [String]) {
        engine.close()
        let directory = StoreFiles.regionDirectory(configuration.stateDirectory, writer.region)
        let moved = names.filter { StoreFiles.exists("\(directory)/\($0)") }.map { name in
            Quarantine.move(
                name, directory: directory, region: writer.region, nowMs: configuration.clock(),
                log: configuration.log)
        }
        writer.recordQuarantined(moved)
        retryAtNs = 0
        backoffMs = configuration.retryDelayMs
    }

    /// At stop: checkpoint and close the files.
    func close() {
        engine.checkpointAll()
        engine.close()
    }
}
