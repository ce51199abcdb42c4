import Foundation
import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

/// Group commit in the journal (one write + fdatasync per round) and the appliers' batching
/// (`applyIntervalMs`, `commitMaxRows`).
@Suite(.serialized) struct GroupCommitTests {
    /// Frames that arrive while a journal round is being prepared share its write and fdatasync
    /// (`journalMaxDelayMicroseconds` makes the batching deterministic here).
    @Test func framesArrivingTogetherShareOneJournalRoundAndOneFdatasync() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        configuration.journalMaxDelayMicroseconds = 300_000
        let store = try ShardStore(configuration: configuration)
        defer { store.stop(timeoutMs: 1000) }
        let writer = try store.writer(for: ae)
        let done = Completions()
        for index in 0..<200 {
            let payload = telemetryPayload(vin: testVIN(index), baseTimeMs: noon - 60_000, records: simpleRecords(1))
            try writer.submitTelemetry(payload, completion: done.callback)
        }
        #expect(await done.wait(for: 200))
        let statistics = store.journalStatistics
        #expect(statistics.entries == 200)
        #expect(statistics.rounds <= 3, "200 frames in \(statistics.rounds) rounds")
        #expect(statistics.fdatasyncs == statistics.rounds)
    }

    /// A long apply interval with a small row limit: the applier must apply once the waiting rows reach
    /// the limit, not wait out the interval.
    @Test func aFullBatchIsAppliedWithoutWaitingOutTheApplyInterval() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        configuration.applyIntervalMs = 600_000
        configuration.commitMaxRows = 100
        let store = try ShardStore(configuration: configuration)
        defer { store.stop(timeoutMs: 1000) }
        let writer = try store.writer(for: ae)
        let done = Completions()
        // One record opens the transaction and its ten-minute window; 100 more fill it.
        for (index, count) in [1, 50, 50].enumerated() {
            let payload = telemetryPayload(
                vin: testVIN(40 + index), baseTimeMs: noon - 60_000, records: simpleRecords(count))
            try writer.submitTelemetry(payload, completion: done.callback)
        }
        #expect(await done.wait(for: 3, seconds: 30))
        #expect(done.outcomes.map(\.stored).reduce(0, +) == 101)
        #expect(await writer.waitUntilApplied(seconds: 30))
        #expect(writer.statistics.recordsStored == 101)
        #expect(writer.statistics.commits == 1)
    }

    /// Entries acknowledged within one apply interval share one apply transaction.
    @Test func entriesInsideTheApplyIntervalShareOneTransaction() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        configuration.applyIntervalMs = 2_000
        let store = try ShardStore(configuration: configuration)
        defer { store.stop(timeoutMs: 1000) }
        let writer = try store.writer(for: ae)
        let done = Completions()
        for index in 0..<20 {
            let payload = telemetryPayload(vin: testVIN(60 + index), baseTimeMs: noon - 60_000, records: simpleRecords(1))
            try writer.submitTelemetry(payload, completion: done.callback)
        }
        #expect(await done.wait(for: 20, seconds: 30))
        #expect(done.outcomes.map(\.stored).reduce(0, +) == 20)
        #expect(await writer.waitUntilApplied(seconds: 30))
        // 20 one-record frames submitted within a few ms of each other: one transaction, not 20. (A
        // stall of the test thread longer than the 2 s window could split them; never into 20.)
        #expect(writer.statistics.commits <= 2)
    }

    /// SQLite's automatic checkpoint is replaced (it would run inside the COMMIT whose ACKs then
    /// wait): the writer checkpoints a large WAL itself after the completions, so the WAL's pages
    /// reach the database file while the store runs, not only at stop.
    @Test func theWriterCheckpointsItsWALWhileRunning() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        defer { store.stop(timeoutMs: 1000) }
        let writer = try store.writer(for: ae)
        let database = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)"
        let done = Completions()
        // 100,000 rows of ~66 bytes: about 1,600 pages, past the 1,000-page checkpoint threshold.
        let frames = 2_000
        for index in 0..<frames {
            let payload = telemetryPayload(
                vin: testVIN(100 + index % 50), baseTimeMs: noon - 3_600_000 + Int64(index / 50) * 50_000,
                records: simpleRecords(50))
            try writer.submitTelemetry(payload, completion: done.callback)
        }
        #expect(await done.wait(for: frames, seconds: 60))
        #expect(done.outcomes.map(\.stored).reduce(0, +) == frames * 50)
        // A new database file holds its schema in a few pages; the rows arrived only through the WAL.
        // The checkpoint runs after the completions of the transaction that crossed the threshold, so
        // it may still be running when the last completion arrives: wait for it (bounded).
        func databaseSize() -> Int {
            (try? FileManager.default.attributesOfItem(atPath: database)[.size] as? Int) ?? 0
        }
        #expect(
            await eventually { databaseSize() > 1_000_000 },
            "database file \(databaseSize()) bytes: the WAL was never checkpointed")
    }
}
