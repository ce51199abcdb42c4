import Foundation
import HorgosTestSupport
import HorgosWire
import Synchronization
import Testing

@testable import HorgosStore

/// Frames of distinct vehicles (one per entry), so a track tells which entry landed.
func ledgerFrames(_ count: Int, records: Int = 2) -> [[UInt8]] {
    (0..<count).map { k in telemetryPayload(vin: testVIN(k), baseTimeMs: noon - 60_000, records: simpleRecords(records))
    }
}

/// The regions of a hand-written journal: even LSNs for AE, odd for BR (LSN = index + 1).
func alternatingRegions(_ count: Int, from first: Int = 0) -> [Region] {
    (0..<count).map { (first + $0) % 2 == 1 ? ae : br }
}

/// Which of `count` ledger frames (vehicle k in the region of `alternatingRegions`) are in the shards.
func storedLedgerFrames(_ dir: TempDirectory, count: Int) throws -> Set<Int> {
    var stored = Set<Int>()
    for k in 0..<count {
        let region = k % 2 == 1 ? ae : br
        let reader = ShardReader(stateDirectory: dir.path, region: region)
        guard reader.hasData else { continue }
        if !(try reader.track(testVIN(k), fromMs: 0, toMs: .max)).isEmpty { stored.insert(k) }
    }
    return stored
}

/// The start-up recovery: what it reads, where the next LSN starts, and the salvage of damage.
@Suite(.serialized) struct JournalRecoveryTests {
    /// A segment of `frames` entries from LSN 1, recorded as the newest ever created (as the journal
    /// records each new segment); returns its path, its entries' offsets and the highest LSN it can hold.
    static func newestSegment(
        _ dir: TempDirectory, _ configuration: StoreConfiguration, frames: Int
    ) throws -> (path: String, offsets: [Int], limit: UInt64) {
        let (path, offsets) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon,
            payloads: ledgerFrames(frames).map { (.telemetry, $0) })
        let limit = JournalFormat.lsnLimit(firstLSN: 1, capacity: Journal.segmentCapacity(configuration))
        try JournalHighWater.write(directory: "\(dir.path)/journal", segmentFirstLSN: 1, lsnLimit: limit)
        return (path, offsets, limit)
    }

    /// A start re-reads only the segments some region still needs: the ones every region applied (in
    /// this boot) are kept for retention but not read entry by entry (a crash loop stays fast).
    @Test func aStartReadsOnlyTheSegmentsSomeRegionHasNotApplied() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = ledgerFrames(30)
        for segment in 0..<3 {
            try writeJournalSegment(
                stateDirectory: dir.path, firstLSN: UInt64(segment * 10 + 1), arrivalMs: noon,
                payloads: frames[(segment * 10)..<(segment * 10 + 10)].map { (.telemetry, $0) })
        }
        try DurableLSNFile.write(directory: "\(dir.path)/journal", lsns: [ae: 20])
        let journal = try Journal(configuration: makeConfiguration(dir, clock: TestClock(noon)), appliedLSNs: [ae: 20])
        defer { journal.releaseLock() }
        let statistics = journal.statistics
        #expect(statistics.segmentsSkippedAtStart == 2)
        #expect(statistics.segmentsReadAtStart == 1)
        #expect(journal.recovered[ae]?.map(\.lsn) == Array(21...30))
        #expect(journal.deliveredLSN.load(ordering: .relaxed) == 30)
    }

    /// After the replay of what it found, a region makes its shards durable at once (not after the
    /// durability interval), so the segments it read go and the next start does not read them again.
    @Test func theReplayedSegmentsAreRetiredAsSoonAsTheReplayIsApplied() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = ledgerFrames(30)
        for segment in 0..<3 {
            try writeJournalSegment(
                stateDirectory: dir.path, firstLSN: UInt64(segment * 10 + 1), arrivalMs: noon,
                payloads: frames[(segment * 10)..<(segment * 10 + 10)].map { (.telemetry, $0) })
        }
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        configuration.durabilityIntervalMs = 600_000
        let store = try ShardStore(configuration: configuration)
        defer { store.stop() }
        #expect(await store.waitUntilApplied())
        _ = await eventually(seconds: 30) { store.journalStatistics.segments <= 1 }
        #expect(store.journalStatistics.segments == 1, "the replayed segments were not retired")
        #expect(DurableLSNFile.read(directory: "\(dir.path)/journal").lsns[ae] == 30)
    }

    /// A torn tail may have held entries a `process` journal acknowledged: the next segment starts past
    /// every LSN the torn segment could have held (the high-water mark), marked as following a gap.
    @Test func afterATornTailTheNextSegmentStartsPastEveryLSNTheTornOneCouldHold() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let configuration = makeConfiguration(dir, clock: TestClock(noon))
        let (path, offsets, limit) = try Self.newestSegment(dir, configuration, frames: 5)
        truncate(path, off_t(offsets[4] + 20))
        let log = LogSink()
        var logged = configuration
        logged.log = log.function
        let journal = try Journal(configuration: logged, appliedLSNs: [:])
        journal.releaseLock()
        let next = limit + 1
        #expect(journal.deliveredLSN.load(ordering: .relaxed) == next - 1)
        let created = "\(dir.path)/journal/\(JournalFormat.segmentFileName(firstLSN: next))"
        let header = try Array(Data(contentsOf: URL(fileURLWithPath: created)).prefix(16))
        #expect(header.withUnsafeBytes { JournalFormat.segmentFlags($0) } == JournalFormat.followsGapFlag)
        #expect(JournalHighWater.read(directory: "\(dir.path)/journal")?.segmentFirstLSN == next)
        #expect(log.all.contains { $0.contains("cut a torn entry") && $0.contains("never acknowledged") })
        #expect(!log.all.contains { $0.contains("it was never acknowledged") })
    }

    /// A segment that follows a gap (its header says so) is accepted and replayed; one that does not
    /// is a missing segment, refused.
    @Test func aSegmentMarkedAsFollowingAGapIsReplayedAndAnUnmarkedGapIsRefused() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = ledgerFrames(8)
        try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames[0..<4].map { (.telemetry, $0) })
        let (later, _) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1_000, arrivalMs: noon, payloads: frames[4..<8].map { (.telemetry, $0) }
        )
        #expect {
            _ = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        } throws: { error in
            (error as? StoreError)?.kind == .journalCorrupt && "\(error)".contains("a segment is missing")
        }
        try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1_000, arrivalMs: noon,
            payloads: frames[4..<8].map { (.telemetry, $0) },
            flags: JournalFormat.followsGapFlag)
        _ = later
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        #expect(await store.waitUntilApplied())
        #expect(store.journalStatistics.durableLSN == 1_003)
        let done = Completions()
        try store.writer(for: ae).submitTelemetry(frames[0], completion: done.callback)
        #expect(await done.wait(for: 1))
        #expect(store.journalStatistics.durableLSN == 1_004)
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<8 { #expect(try reader.track(testVIN(k), fromMs: 0, toMs: .max).count == 2) }
    }

    /// The newest segment moved aside (the old RUNBOOK's way out of damage) with entries no region
    /// applied: the next start does not give their LSNs to new entries.
    @Test func aMovedAsideNewestSegmentNeverHasItsLSNsReused() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let configuration = makeConfiguration(dir, clock: TestClock(noon))
        let (path, _, limit) = try Self.newestSegment(dir, configuration, frames: 10)
        try FileManager.default.moveItem(atPath: path, toPath: "\(dir.path)/moved-aside.log")
        let store = try ShardStore(configuration: configuration)
        let done = Completions()
        try store.writer(for: ae).submitTelemetry(ledgerFrames(1)[0], completion: done.callback)
        #expect(await done.wait(for: 1))
        #expect(store.journalStatistics.durableLSN > 10)
        #expect(store.journalStatistics.durableLSN == limit + 1)
        store.stop()
    }

    /// Damage in the middle of a segment: `check` names the segment, the offset and the LSNs lost and
    /// which regions still need them; the start refuses; `salvage` keeps every intact entry (before and
    /// after the damage), so only the entries in the damaged bytes are missing afterwards, and the next
    /// LSN is past every one written.
    @Test func salvageKeepsEveryIntactEntryAndLosesOnlyTheDamagedOnes() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = ledgerFrames(40)
        let (first, offsets) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames[0..<20].map { (.telemetry, $0) },
            regions: alternatingRegions(20))
        try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 21, arrivalMs: noon, payloads: frames[20..<40].map { (.telemetry, $0) },
            regions: alternatingRegions(20, from: 20))
        // Damage from the middle of entry LSN 8 to the middle of entry LSN 9.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: first))
        try handle.seek(toOffset: UInt64(offsets[7] + 40))
        try handle.write(contentsOf: Data((0..<(offsets[8] - offsets[7])).map { _ in UInt8.random(in: 0...255) }))
        try handle.close()

        let report = try JournalMaintenance.check(stateDirectory: dir.path, regions: [ae, br])
        #expect(!report.ok)
        #expect(report.damage.count == 1)
        let damage = try #require(report.damage.first)
        #expect(damage.segment == JournalFormat.segmentFileName(firstLSN: 1))
        #expect(damage.offset == offsets[7])
        #expect(damage.afterLSN == 7)
        #expect(damage.resumesAtLSN == 10)
        #expect(damage.lostEntries == 2)
        #expect(damage.regionsNotAppliedPast == ["AE", "BR"])
        #expect(throws: StoreError.self) {
            _ = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon)))
        }

        let salvage = try JournalMaintenance.salvage(stateDirectory: dir.path, regions: [ae, br])
        #expect(salvage.entriesKept == 18)
        #expect(salvage.segmentsReplaced == [JournalFormat.segmentFileName(firstLSN: 1)])
        #expect(
            salvage.segmentsWritten == [
                JournalFormat.segmentFileName(firstLSN: 1), JournalFormat.segmentFileName(firstLSN: 10),
            ])
        #expect(salvage.regionsMissingEntries == ["AE", "BR"])
        let backup = try #require(salvage.backupDirectory)
        #expect(FileManager.default.fileExists(atPath: "\(backup)/\(JournalFormat.segmentFileName(firstLSN: 1))"))
        #expect(try JournalMaintenance.check(stateDirectory: dir.path, regions: [ae, br]).ok)

        let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon)))
        #expect(await store.waitUntilApplied())
        let done = Completions()
        try store.writer(for: ae).submitTelemetry(frames[1], completion: done.callback)
        #expect(await done.wait(for: 1))
        #expect(store.journalStatistics.durableLSN == 41, "a new entry must take an LSN never written")
        store.stop()
        // The ledger: every frame but the two in the damaged bytes (LSN 8 and 9: frames 7 and 8).
        #expect(try storedLedgerFrames(dir, count: 40) == Set(0..<40).subtracting([7, 8]))
    }

    /// Damage in bytes every region had already applied: `check` says so, the start does not even read
    /// that segment (no region needs it), and after `salvage` nothing acknowledged is missing.
    @Test func damageEveryRegionHadAppliedLosesNothing() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = ledgerFrames(40)
        let (first, offsets) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames[0..<20].map { (.telemetry, $0) },
            regions: alternatingRegions(20))
        let (second, _) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 21, arrivalMs: noon, payloads: frames[20..<40].map { (.telemetry, $0) },
            regions: alternatingRegions(20, from: 20))
        let copies = try [first, second].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        do {
            // Applied by every region and made durable; retention then deletes both segments.
            let store = try ShardStore(
                configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon)))
            #expect(await store.waitUntilApplied())
            store.stop()
        }
        // The segments are back (as if retention had not run yet), damaged in the middle.
        try copies[0].write(to: URL(fileURLWithPath: first))
        try copies[1].write(to: URL(fileURLWithPath: second))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: first))
        try handle.seek(toOffset: UInt64(offsets[7] + 40))
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 200))
        try handle.close()

        let report = try JournalMaintenance.check(stateDirectory: dir.path, regions: [ae, br])
        let damage = try #require(report.damage.first)
        #expect(damage.regionsAppliedPast == ["AE", "BR"])
        #expect(damage.regionsNotAppliedPast.isEmpty)
        let salvage = try JournalMaintenance.salvage(stateDirectory: dir.path, regions: [ae, br])
        #expect(salvage.regionsMissingEntries.isEmpty)
        let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon)))
        #expect(await store.waitUntilApplied())
        let done = Completions()
        try store.writer(for: ae).submitTelemetry(frames[1], completion: done.callback)
        #expect(await done.wait(for: 1))
        #expect(store.journalStatistics.durableLSN > 40)
        store.stop()
        #expect(try storedLedgerFrames(dir, count: 40) == Set(0..<40))
    }

    /// The journal's lock: a second store (a second daemon) on the same state directory stops with a
    /// named error, and so does a salvage while the daemon runs.
    @Test func oneProcessPerStateDirectory() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let locked = { (error: any Error) in (error as? StoreError)?.kind == .inUse }
        // flock is per open file description: a second open in this process conflicts like another process.
        #expect { _ = try JournalMaintenance.salvage(stateDirectory: dir.path, regions: [ae]) } throws: { locked($0) }
        #expect { _ = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon))) } throws: {
            locked($0)
        }
        store.stop()
        _ = try JournalMaintenance.salvage(stateDirectory: dir.path, regions: [ae])
    }

    /// The journal's, the appliers' and the integrity check's threads carry their names to the kernel
    /// (`top -H`, `/proc/PID/task/*/comm`), not the runtime's default.
    @Test func storeThreadsAreNamedForTheKernel() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        defer { store.stop() }
        var names = Set<String>()
        _ = await eventually(seconds: 30, pollMilliseconds: 10) {
            names = Set(
                ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []).compactMap { task in
                    (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                })
            return names.isSuperset(of: ["horgos-journal", "horgos-apply-0", "horgos-check"])
        }
        #expect(names.isSuperset(of: ["horgos-journal", "horgos-apply-0", "horgos-check"]), "\(names.sorted())")
    }
}
