import Foundation
import HorgosWire
import Synchronization
import HorgosTestSupport
import Testing

@testable import HorgosStore

/// Writes a journal segment by hand (the format of `JournalFormat`): the state a crash leaves.
/// Returns the segment's path and each entry's start offset.
@discardableResult
func writeJournalSegment(
    stateDirectory: String, firstLSN: UInt64, arrivalMs: Int64, region: Region = ae,
    payloads: [(JournalEntryKind, [UInt8])]
) throws -> (path: String, offsets: [Int]) {
    let directory = "\(stateDirectory)/journal"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var bytes = JournalFormat.segmentHeader
    var offsets: [Int] = []
    for (index, (kind, payload)) in payloads.enumerated() {
        offsets.append(bytes.count)
        payload.withUnsafeBytes { p in
            JournalFormat.appendEntry(
                to: &bytes, lsn: firstLSN + UInt64(index), kind: kind.rawValue, region: region,
                arrivalMs: arrivalMs, context: [], payload: p)
        }
    }
    let path = "\(directory)/\(JournalFormat.segmentFileName(firstLSN: firstLSN))"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return (path, offsets)
}

@Suite(.serialized) struct JournalTests {
    /// Five acknowledged frames in the journal, none applied (the daemon died before its applier ran):
    /// the next start applies all of them.
    @Test func entriesInTheJournalAreReplayedIntoTheShardsAtStart() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = (0..<5).map { k in
            telemetryPayload(vin: testVIN(k), baseTimeMs: noon - 60_000, records: simpleRecords(4))
        }
        try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames.map { (.telemetry, $0) })
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        #expect(await store.waitUntilApplied())
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<5 { #expect(try reader.track(testVIN(k), fromMs: 0, toMs: .max).count == 4) }
        #expect(ShardStore.appliedLSN(stateDirectory: dir.path, region: ae) == 5)
    }

    /// Replay is idempotent: the same entries applied a second time (no durable-LSN file, so the
    /// store cannot trust the applied LSN and replays from 0) store nothing twice.
    @Test func replayingEntriesAlreadyAppliedStoresNothingTwice() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = (0..<3).map { k in
            telemetryPayload(vin: testVIN(k), baseTimeMs: noon - 60_000, records: simpleRecords(5))
        }
        let (path, _) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames.map { (.telemetry, $0) })
        let copy = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
            #expect(await store.waitUntilApplied())
            store.stop()
        }
        // As if the machine rebooted before the shards were fsynced: the segment is back, the
        // durable-LSN file is gone.
        for name in try FileManager.default.contentsOfDirectory(atPath: "\(dir.path)/journal") {
            try FileManager.default.removeItem(atPath: "\(dir.path)/journal/\(name)")
        }
        try copy.write(to: URL(fileURLWithPath: path))
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        #expect(await store.waitUntilApplied())
        let writer = try store.writer(for: ae)
        #expect(writer.statistics.recordsDuplicate == 15)
        #expect(writer.statistics.recordsStored == 0)
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<3 {
            let track = try reader.track(testVIN(k), fromMs: 0, toMs: .max)
            #expect(track.count == 5)
            #expect(Set(track.map(\.timestampMs)).count == 5)
        }
    }

    /// A crash in the middle of a journal write leaves a partial entry at the tail of the newest
    /// segment: it was never acknowledged; it is cut off and logged, everything before it replayed.
    @Test func aTornTailIsCutOffAndLoggedAndTheEntriesBeforeItAreReplayed() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = (0..<4).map { k in
            telemetryPayload(vin: testVIN(k), baseTimeMs: noon - 60_000, records: simpleRecords(3))
        }
        let (path, offsets) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames.map { (.telemetry, $0) })
        // The last entry only half written.
        let size = Int(StoreFiles.size(path))
        let tornAt = offsets[3] + (size - offsets[3]) / 2
        truncate(path, off_t(tornAt))
        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon), log: log))
        #expect(await store.waitUntilApplied())
        store.stop()
        #expect(log.all.contains { $0.contains("cut a torn entry") && $0.contains("after LSN 3") }, "\(log.all)")
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<3 { #expect(try reader.track(testVIN(k), fromMs: 0, toMs: .max).count == 3) }
        #expect(try reader.track(testVIN(3), fromMs: 0, toMs: .max).isEmpty)
        #expect(ShardStore.appliedLSN(stateDirectory: dir.path, region: ae) == 3)
        // The next LSN follows the last good entry.
        #expect(store.journalStatistics.durableLSN == 3)
    }

    /// A damaged entry with valid entries after it is not a torn write: the store refuses to start
    /// with a named error whose message says what to do, rather than skip acknowledged data.
    @Test func aDamagedEntryInTheMiddleIsANamedErrorThatSaysWhatToDo() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let frames = (0..<5).map { k in
            telemetryPayload(vin: testVIN(k), baseTimeMs: noon - 60_000, records: simpleRecords(3))
        }
        let (path, offsets) = try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon, payloads: frames.map { (.telemetry, $0) })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offsets[2] + 40] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.kind == .journalCorrupt && error.message.contains("after LSN 2")
                && error.message.contains("RUNBOOK")
        }
    }

    /// The time-horizon rule is applied at submission from the arrival time, and the applier,
    /// replaying later with a moved clock, uses the arrival time stored in the entry: same answer.
    @Test func rejectedRecordsAreKnownAtTheAckAndTheReplayAgrees() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        // Ten days old at arrival: outside the 7-day horizon.
        let old = telemetryPayload(vin: testVIN(9), baseTimeMs: noon - 10 * 86_400_000, records: simpleRecords(1))
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        let done = Completions()
        store.journal.appliersPaused.store(true, ordering: .relaxed)
        try writer.submitTelemetry(old, completion: done.callback)
        #expect(await done.wait(for: 1))
        #expect(done.outcomes == [CommitOutcome(stored: 0, rejected: 1)])
        // The clock moves 10 days back before the applier runs: the stored arrival time decides.
        clock.ms = noon - 10 * 86_400_000
        store.journal.appliersPaused.store(false, ordering: .relaxed)
        #expect(await store.waitUntilApplied())
        #expect(writer.statistics.recordsRejected == 1)
        #expect(writer.statistics.recordsStored == 0)
        store.stop()
    }

    /// `journalMaxBytes` reached while the appliers cannot keep up: frames wait before the journal
    /// (their completions do not run, so the daemon's sessions stop reading), the journal stays within
    /// its bound, and once the appliers catch up every frame is acknowledged and stored.
    @Test func theJournalBoundHoldsFramesBackAndLosesNothing() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        configuration.journalSegmentBytes = 1 << 20
        configuration.journalMaxBytes = 2 << 20
        let store = try ShardStore(configuration: configuration)
        let writer = try store.writer(for: ae)
        store.journal.appliersPaused.store(true, ordering: .relaxed)
        defer { store.journal.appliersPaused.store(false, ordering: .relaxed) }
        let done = Completions()
        // 100 frames of 1,000 records (~40 KB each): about 4 MB, twice the bound.
        let frames = (0..<100).map { k in
            telemetryPayload(
                vin: testVIN(k % 10), baseTimeMs: noon - 3_600_000 + Int64(k / 10) * 1_000_000,
                records: simpleRecords(1000))
        }
        for frame in frames { try writer.submitTelemetry(frame, completion: done.callback) }
        #expect(!(await done.wait(for: frames.count, seconds: 1.5)))
        let acknowledged = done.count
        #expect(acknowledged > 0 && acknowledged < frames.count, "\(acknowledged) of \(frames.count)")
        let statistics = store.journalStatistics
        #expect(statistics.heldSubmissions == frames.count - acknowledged)
        #expect(statistics.diskBytes <= configuration.journalMaxBytes)
        store.journal.appliersPaused.store(false, ordering: .relaxed)
        #expect(await done.wait(for: frames.count - acknowledged, seconds: 60))
        #expect(await store.waitUntilApplied())
        store.stop()
        #expect(store.journalStatistics.diskBytes <= configuration.journalMaxBytes)
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<10 { #expect(try reader.track(testVIN(k), fromMs: 0, toMs: .max).count == 10_000) }
    }

    /// Segments every region has applied and made durable are deleted; the newest stays.
    /// A start that writes nothing leaves an empty last segment, and the next start's active segment begins at
    /// the same LSN: the same file name. Found by the crash test under load: the empty segment was kept beside the
    /// live one and retired at the first durability round, which unlinked the live file under the writer, so every
    /// frame acknowledged after that lived in an unlinked file and a crash lost it.
    @Test func anEmptyLastSegmentIsNotKeptBesideTheNewActiveSegmentOfTheSameName() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        func frame(_ k: Int) -> [UInt8] {
            telemetryPayload(vin: testVIN(k), baseTimeMs: noon - 60_000, records: simpleRecords(3))
        }
        // First life: a frame, applied; the stop makes it durable and retires its segment.
        let first = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        #expect(try await first.writer(for: ae).storeTelemetry(frame(1)) == CommitOutcome(stored: 3))
        first.stop()
        // Second life writes nothing: its active segment is left empty.
        try ShardStore(configuration: makeConfiguration(dir, clock: clock)).stop()
        // Third life: a frame applied and made durable, so the appliers retire what every region applied.
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        #expect(try await writer.storeTelemetry(frame(2)) == CommitOutcome(stored: 3))
        #expect(await eventually { writer.statistics.durableLSN >= writer.statistics.appliedLSN })
        // A frame acknowledged after that round must be in a file of the journal directory.
        let done = Completions()
        try writer.submitTelemetry(frame(3), completion: done.callback)
        #expect(await done.wait(for: 1))
        let journal = "\(dir.path)/journal"
        let files = try FileManager.default.contentsOfDirectory(atPath: journal).filter { $0.hasSuffix(".log") }
        #expect(files.count == store.journalStatistics.segments, "\(files)")
        let onDisk = files.map { StoreFiles.size("\(journal)/\($0)") }.reduce(0, +)
        #expect(onDisk > JournalFormat.segmentHeaderSize, "the acknowledged frame is on disk")
    }

    @Test func appliedAndDurableSegmentsAreDeleted() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let done = Completions()
        for k in 0..<120 {
            try writer.submitTelemetry(
                telemetryPayload(
                    vin: testVIN(k % 7), baseTimeMs: noon - 3_600_000 + Int64(k) * 1_000_000 / 120 * 10,
                    records: simpleRecords(500)),
                completion: done.callback)
        }
        #expect(await done.wait(for: 120, seconds: 60))
        #expect(await store.waitUntilApplied())
        // 120 x ~20 KB = ~2.4 MB in 1 MiB segments: at least two deletable ones.
        #expect(await eventually { store.journalStatistics.segments == 1 })
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(dir.path)/journal").filter {
            $0.hasSuffix(".log")
        }
        #expect(names.count == 1)
        store.stop()
    }

    /// A state directory written before the journal (no journal directory, no applied LSN) opens,
    /// starts its LSNs at 1 and keeps working.
    @Test func aStateDirectoryFromBeforeTheJournalOpensAndKeepsWorking() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
            _ = try await store.writer(for: ae).storeTelemetry(
                telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 60_000, records: simpleRecords(3)))
            store.stop()
        }
        // Remove what the journal added: the directory and the applied LSN.
        try FileManager.default.removeItem(atPath: "\(dir.path)/journal")
        let db = try SQLiteConnection(path: "\(dir.path)/AE/registry.sqlite", readOnly: false)
        try db.exec("DELETE FROM meta WHERE key = 'applied_lsn'")
        _ = try db.checkpoint(truncate: true)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        #expect(
            try await writer.storeTelemetry(
                telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 30_000, records: simpleRecords(3)))
                == CommitOutcome(stored: 3))
        store.stop()
        #expect(try ShardReader(stateDirectory: dir.path, region: ae).track(testVIN(1), fromMs: 0, toMs: .max).count == 6)
        #expect(ShardStore.appliedLSN(stateDirectory: dir.path, region: ae) == 1)
    }
}
