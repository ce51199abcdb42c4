import Foundation
import HorgosWire
import Synchronization
import Testing

@testable import HorgosStore

/// Issue 20's three hooks into the journal (SEAMS.md): the reader of durable entries, the retention
/// hold (segments and admission) and the acknowledgement gate; and followed entries' origin context.
@Suite struct JournalHooksTests {
    final class TestHold: JournalRetentionHold {
        let lsn = Atomic<UInt64>(0)
        let open = Atomic<Bool>(true)
        var heldLSN: UInt64 { lsn.load(ordering: .acquiring) }
        func admits(_ region: Region) -> Bool { open.load(ordering: .relaxed) }
    }

    final class TestGate: JournalAcknowledgementGate {
        let held = Mutex<[GatedCompletion]>([])
        func hold(_ completions: [GatedCompletion]) { held.withLock { $0.append(contentsOf: completions) } }
        func runAll() {
            for completion in held.withLock({ list in
                defer { list.removeAll() }; return list
            }) { completion.run() }
        }
    }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        var callback: @Sendable (CommitOutcome) -> Void { { [self] _ in value.add(1, ordering: .relaxed) } }
        var count: Int { value.load(ordering: .relaxed) }
    }

    static func until(_ seconds: Double = 20, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    /// A 50-record TELEMETRY payload (2,028 bytes): 700 of them fill two 1 MiB segments.
    static func payload(_ index: Int) -> [UInt8] {
        telemetryPayload(
            vin: testVIN(index % 7), baseTimeMs: noon - 3_600_000 + Int64(index) * 60_000, records: simpleRecords(50))
    }

    static func configuration(_ dir: TempDirectory, hooks: JournalHooks) -> StoreConfiguration {
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        configuration.journalHooks = hooks
        return configuration
    }

    @Test func theReaderYieldsEveryDurableEntryInOrderAcrossSegmentsAndAfterARestart() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let hold = TestHold()  // keeps every segment: the restart reads them back
        let store = try ShardStore(configuration: Self.configuration(dir, hooks: JournalHooks(holds: [hold])))
        let writer = try store.writer(for: ae)
        let done = Counter()
        for index in 0..<700 { try writer.submitTelemetry(Self.payload(index), completion: done.callback) }
        #expect(try await Self.until { done.count == 700 })
        #expect(store.journalStatistics.segments >= 2, "the entries span segments")
        let reader = store.journalReader(after: 0)
        var lsns: [UInt64] = []
        while let record = reader.next() {
            #expect(record.region == ae && record.kind == JournalEntryKind.telemetry.rawValue)
            #expect(Array(record.payload) == Self.payload(Int(record.lsn) - 1), "entry \(record.lsn) byte for byte")
            #expect(record.followedOrigin == nil && record.context.isEmpty)
            lsns.append(record.lsn)
        }
        #expect(lsns == Array(1...700))
        #expect(reader.next() == nil, "nothing after the last durable entry")
        let middle = store.journalReader(after: 350)
        #expect(middle.next()?.lsn == 351)
        store.stop()

        // Recovered segments are read too, then what is written after the restart.
        let again = try ShardStore(configuration: Self.configuration(dir, hooks: JournalHooks(holds: [hold])))
        let more = Counter()
        try again.writer(for: ae).submitTelemetry(Self.payload(700), completion: more.callback)
        #expect(try await Self.until { more.count == 1 })
        let afterRestart = again.journalReader(after: 690)
        var tail: [UInt64] = []
        while let record = afterRestart.next() { tail.append(record.lsn) }
        #expect(tail == Array(691...701))
        again.stop()
    }

    @Test func aHoldKeepsSegmentsUntilItMovesAndHoldsARegionsFramesBackWhileClosed() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let hold = TestHold()
        let durableRounds = Counter()
        let store = try ShardStore(
            configuration: Self.configuration(
                dir,
                hooks: JournalHooks(holds: [hold], durable: { _ in durableRounds.value.add(1, ordering: .relaxed) })))
        let writer = try store.writer(for: ae)
        let done = Counter()
        for index in 0..<700 { try writer.submitTelemetry(Self.payload(index), completion: done.callback) }
        #expect(try await Self.until { done.count == 700 })
        #expect(durableRounds.count >= 1, "the durable-round callback ran")
        // Every region applied and made the entries durable in its shards (200 ms rounds) ...
        #expect(try await Self.until { writer.statistics.durableLSN >= 700 })
        store.retireJournal()
        // ... but the hold at LSN 0 keeps the segments.
        #expect(store.journalStatistics.segments >= 2, "\(store.journalStatistics.segments) segments")
        hold.lsn.store(700, ordering: .releasing)
        store.retireJournal()
        #expect(store.journalStatistics.segments == 1, "only the segment being written is left")

        // Closed: the region's next frame waits before the journal (no ACK), then goes when it opens.
        hold.open.store(false, ordering: .relaxed)
        let late = Counter()
        try writer.submitTelemetry(Self.payload(700), completion: late.callback)
        try await Task.sleep(for: .milliseconds(300))
        #expect(late.count == 0 && store.journalStatistics.heldSubmissions == 1)
        hold.open.store(true, ordering: .relaxed)
        store.wakeJournal()
        #expect(try await Self.until { late.count == 1 })
        store.stop()
    }

    @Test func aGateRunsTheCompletionsOfDurableRoundsOnlyWhenItReleasesThem() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let gate = TestGate()
        let store = try ShardStore(configuration: Self.configuration(dir, hooks: JournalHooks(gate: gate)))
        let writer = try store.writer(for: ae)
        let done = Counter()
        for index in 0..<3 { try writer.submitTelemetry(Self.payload(index), completion: done.callback) }
        #expect(try await Self.until { gate.held.withLock { $0.count } == 3 })
        #expect(store.journalStatistics.durableLSN == 3, "durable in the journal")
        try await Task.sleep(for: .milliseconds(200))
        #expect(done.count == 0, "but not acknowledged")
        #expect(gate.held.withLock { $0.map(\.lsn) } == [1, 2, 3])
        #expect(gate.held.withLock { $0.allSatisfy { $0.region == ae } })
        gate.runAll()
        #expect(done.count == 3)
        store.stop()
    }

    @Test func aFollowedEntryKeepsItsOriginAndArrivalTimeAndIsAppliedLikeAnyOther() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: Self.configuration(dir, hooks: JournalHooks()))
        let writer = try store.writer(for: ae)
        let done = Counter()
        let payload = telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 60_000, records: simpleRecords(3))
        let arrival = noon - 30_000
        try writer.submitFollowed(
            .telemetry, payload, arrivalMs: arrival, origin: FollowedOrigin(node: "node-b", lsn: 77),
            completion: done.callback)
        #expect(try await Self.until { done.count == 1 })
        let record = try #require(store.journalReader(after: 0).next())
        #expect(record.followedOrigin == FollowedOrigin(node: "node-b", lsn: 77))
        #expect(record.arrivalMs == arrival && Array(record.payload) == payload)
        #expect(try await Self.until { writer.statistics.recordsStored == 3 })
        // The same entry again (a redelivery) is a duplicate.
        try writer.submitFollowed(
            .telemetry, payload, arrivalMs: arrival, origin: FollowedOrigin(node: "node-b", lsn: 77),
            completion: done.callback)
        #expect(try await Self.until { writer.statistics.recordsDuplicate == 3 })
        store.stop()
    }

    @Test func followedOriginContextsRoundTripAndOthersAreNotMistakenForOne() {
        let origin = FollowedOrigin(node: "standby-2", lsn: 1 << 40)
        let context = origin.context
        #expect(context.withUnsafeBytes { FollowedOrigin(context: $0) } == origin)
        #expect([UInt8]().withUnsafeBytes { FollowedOrigin(context: $0) } == nil)
        var truncated = context
        truncated.removeLast()
        #expect(truncated.withUnsafeBytes { FollowedOrigin(context: $0) } == nil)
        var other = context
        other[0] = 0x47
        #expect(other.withUnsafeBytes { FollowedOrigin(context: $0) } == nil)
    }
}
