import Foundation
import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

@Suite(.serialized) struct IngestTests {
    /// A day file appears with its tables or not at all (built as `<name>.creating`, then renamed): a reader
    /// listing the region never opens a file without a schema, and a leftover of a crash is replaced.
    @Test func aNewDayFileAppearsWithItsSchemaAndALeftoverTemporaryIsReplaced() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let region = "\(dir.path)/AE"
        let day = UTCDay(epochMs: noon).partitionFileName
        try FileManager.default.createDirectory(atPath: region, withIntermediateDirectories: true)
        // What a crash between create and rename leaves: a partial file under the temporary name.
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: "\(region)/\(day).creating"))
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        #expect(
            try await writer.storeTelemetry(telemetryPayload(vin: testVIN(1), baseTimeMs: noon, records: simpleRecords(2)))
                == CommitOutcome(stored: 2))
        store.stop()
        let names = try FileManager.default.contentsOfDirectory(atPath: region)
        #expect(names.contains(day))
        #expect(!names.contains { $0.hasSuffix(".creating") }, "\(names)")
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(testVIN(1), fromMs: 0, toMs: .max).count == 2)
    }

    @Test func resentRecordsAreCountedAsDuplicatesAndStoredOnce() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        let vin = testVIN(10)
        let base = noon - 3_600_000
        let first = telemetryPayload(vin: vin, baseTimeMs: base, records: simpleRecords(50))
        #expect(try await writer.storeTelemetry(first) == CommitOutcome(stored: 50))
        // The same frame again (a lost ACK), then a frame overlapping the second half.
        #expect(try await writer.storeTelemetry(first) == CommitOutcome(duplicates: 50))
        let overlap = telemetryPayload(vin: vin, baseTimeMs: base, records: simpleRecords(50, startOffsetMs: 25_000))
        #expect(try await writer.storeTelemetry(overlap) == CommitOutcome(stored: 25, duplicates: 25))
        // A frame that repeats one timestamp inside itself, and a gap filled below the high-water mark.
        let repeated = telemetryPayload(
            vin: vin, baseTimeMs: base + 500,
            records: [TelemetryRecord(timeOffsetMs: 0), TelemetryRecord(timeOffsetMs: 0)])
        #expect(try await writer.storeTelemetry(repeated) == CommitOutcome(stored: 1, duplicates: 1))
        // Another vehicle at the same timestamps is not a duplicate.
        let other = telemetryPayload(vin: testVIN(11), baseTimeMs: base, records: simpleRecords(50))
        #expect(try await writer.storeTelemetry(other) == CommitOutcome(stored: 50))
        // Duplicates inside one apply transaction (two submissions before the applier runs): the ACKs
        // count both as stored (duplicates are found at apply time), the statistics say what happened.
        let done = Completions()
        let before = writer.statistics
        let again = telemetryPayload(vin: testVIN(12), baseTimeMs: base, records: simpleRecords(10))
        try writer.submitTelemetry(again, completion: done.callback)
        try writer.submitTelemetry(again, completion: done.callback)
        #expect(await done.wait(for: 2))
        #expect(done.outcomes.map(\.stored).reduce(0, +) == 20)
        #expect(await writer.waitUntilApplied())
        #expect(writer.statistics.recordsStored - before.recordsStored == 10)
        #expect(writer.statistics.recordsDuplicate - before.recordsDuplicate == 10)
        store.stop()

        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let track = try reader.track(vin, fromMs: base, toMs: base + 3_600_000)
        #expect(track.count == 76)
        #expect(Set(track.map(\.timestampMs)).count == 76)
        let state = try #require(try reader.vehicle(vin))
        #expect(state.records == 76 && state.duplicates == 76)
        let stats = writer.statistics
        #expect(stats.recordsStored == 136 && stats.recordsDuplicate == 86)
    }

    @Test func duplicatesAreRecognisedAfterARestart() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let payload = telemetryPayload(vin: testVIN(13), baseTimeMs: noon - 10_000, records: simpleRecords(5))
        let older = telemetryPayload(vin: testVIN(13), baseTimeMs: noon - 3 * 86_400_000, records: simpleRecords(5))
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
            #expect(try await store.writer(for: ae).storeTelemetry(payload) == CommitOutcome(stored: 5))
            #expect(try await store.writer(for: ae).storeTelemetry(older) == CommitOutcome(stored: 5))
            store.stop()
        }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        #expect(try await store.writer(for: ae).storeTelemetry(payload) == CommitOutcome(duplicates: 5))
        #expect(try await store.writer(for: ae).storeTelemetry(older) == CommitOutcome(duplicates: 5))
        store.stop()
    }

    @Test func lateRecordsGoToTheirOwnDayAndOutsideTheHorizonAreRejected() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        let vin = testVIN(20)
        let day: Int64 = 86_400_000
        // Live data first, so the late upload lies below the high-water mark.
        #expect(
            try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon, records: simpleRecords(3)))
                == CommitOutcome(stored: 3))
        let late = telemetryPayload(vin: vin, baseTimeMs: noon - 5 * day, records: simpleRecords(4))
        #expect(try await writer.storeTelemetry(late) == CommitOutcome(stored: 4))
        let tooOld = telemetryPayload(vin: vin, baseTimeMs: noon - 7 * day - 1000, records: simpleRecords(2))
        #expect(try await writer.storeTelemetry(tooOld) == CommitOutcome(stored: 1, rejected: 1))
        let future = telemetryPayload(vin: vin, baseTimeMs: noon + day + 1, records: simpleRecords(2))
        #expect(try await writer.storeTelemetry(future) == CommitOutcome(rejected: 2))
        store.stop()

        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let days = reader.partitionDays().map(\.description)
        #expect(days == ["2026-11-22", "2026-11-24", "2026-11-29"])
        #expect(try reader.track(vin, fromMs: noon - 5 * day, toMs: noon - 4 * day).count == 4)
        #expect(try reader.track(vin, fromMs: 0, toMs: .max).count == 8)
        let state = try #require(try reader.vehicle(vin))
        #expect(state.rejected == 3)
        #expect(state.lastSeenMs == noon + 2000)  // the late upload did not move the latest state back
    }

    @Test func aFrameAcrossMidnightIsSplitIntoBothDays() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let midnight = UTCDay(year: 2026, month: 11, day: 30).startMs
        let clock = TestClock(midnight + 60_000)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let vin = testVIN(30)
        // 10 records one second apart: 5 before midnight, 5 from midnight on.
        let payload = telemetryPayload(vin: vin, baseTimeMs: midnight - 5000, records: simpleRecords(10))
        #expect(try await store.writer(for: ae).storeTelemetry(payload) == CommitOutcome(stored: 10))
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let files = try reader.inventory().filter { $0.kind == "telemetry" }
        #expect(files.map(\.name) == ["telemetry-2026-11-29.sqlite", "telemetry-2026-11-30.sqlite"])
        #expect(files.map(\.rows) == [5, 5])
        #expect(files[0].lastRecordMs == midnight - 1000 && files[1].firstRecordMs == midnight)
        let track = try reader.track(vin, fromMs: midnight - 3000, toMs: midnight + 3000)
        #expect(track.map(\.timestampMs) == [-3000, -2000, -1000, 0, 1000, 2000].map { midnight + $0 })
    }

    @Test func retentionDeletesWholeOldPartitionsAndKeepsTheRegistry() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock, log: log))
        let writer = try store.writer(for: ae)
        let old = testVIN(40)
        #expect(
            try await writer.storeTelemetry(
                telemetryPayload(vin: old, baseTimeMs: noon - 6 * 86_400_000, records: simpleRecords(3)))
                == CommitOutcome(stored: 3))
        #expect(
            try await writer.storeTelemetry(telemetryPayload(vin: old, baseTimeMs: noon, records: simpleRecords(3)))
                == CommitOutcome(stored: 3))
        // 87 days later the partition of noon-6d is 93 days old (> 90): it goes; noon's (87 days) stays.
        clock.ms = noon + 87 * 86_400_000
        let fresh = telemetryPayload(vin: testVIN(41), baseTimeMs: clock.ms, records: simpleRecords(1))
        #expect(try await writer.storeTelemetry(fresh) == CommitOutcome(stored: 1))
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(reader.partitionDays().map(\.description) == ["2026-11-29", "2027-02-24"])
        #expect(try reader.vehicle(old)?.records == 6)
        #expect(log.all.contains { $0.contains("retention removed partition 2026-11-23") })
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/AE/telemetry-2026-11-23.sqlite-wal"))
    }

    @Test func eventsAreStoredOnceAndDriveTheAlarmState() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        let vin = testVIN(50)
        let dtcs = [
            DiagnosticTroubleCode(code: 0xA1, source: .battery, state: 1),
            DiagnosticTroubleCode(code: 0xB2, source: .driveMotor, state: 1),
        ]
        let event = eventPayload(vin: vin, timeMs: noon - 1000, level: 3, flags: AlarmBit.insulation.mask, dtcs: dtcs)
        #expect(try await writer.storeEvent(event) == CommitOutcome(stored: 1))
        #expect(try await writer.storeEvent(event) == CommitOutcome(duplicates: 1))
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        var alarms = try reader.activeAlarms()
        #expect(alarms.map(\.vin) == [vin.description])
        #expect(alarms.first?.alarmNames == ["insulation"])
        #expect(alarms.first?.activeDTCs.map(\.code) == [0xA1, 0xB2])
        // The battery DTC clears, then a newer record without alarms clears the alarm bits.
        let clear = eventPayload(
            vin: vin, timeMs: noon, level: 1, flags: 0,
            dtcs: [DiagnosticTroubleCode(code: 0xA1, source: .battery, state: 0)])
        #expect(try await writer.storeEvent(clear) == CommitOutcome(stored: 1))
        alarms = try reader.activeAlarms()
        #expect(alarms.first?.maxAlarmLevel == 1)
        #expect(alarms.first?.activeDTCs.map(\.code) == [0xB2])
        var calm = TelemetryRecord(maxAlarmLevel: 0)
        calm.alarmFlags = 0
        _ = try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon + 1000, records: [calm]))
        let state = try #require(try reader.vehicle(vin))
        #expect(state.maxAlarmLevel == 0 && state.alarmFlags == 0 && state.events == 2)
        store.stop()
        let path = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)"
        #expect(try query(path, "SELECT count(*) FROM events") == ["2"])
        #expect(try query(path, "SELECT count(*) FROM event_dtcs") == ["3"])
    }

    @Test func malformedPayloadsAndUnknownRegionsAreRefusedAtSubmit() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        defer { store.stop() }
        var payload = telemetryPayload(vin: testVIN(60), baseTimeMs: noon, records: simpleRecords(2))
        payload.removeLast()
        #expect(throws: StoreError.self) { try store.writer(for: ae).submitTelemetry(payload) { _ in } }
        let error = #expect(throws: StoreError.self) { try store.writer(for: Region("FR")!) }
        #expect(error?.kind == .unknownRegion)
    }

    /// A region whose applier is stuck (another process holds its registry lock) keeps acknowledging
    /// until its unapplied bytes reach `maxQueuedBytes`; then its frames wait before the journal
    /// (backpressure: the completion does not run) and go on once the region applies again.
    @Test func aRegionOverItsUnappliedBoundHoldsFramesBackAndAnEventOutsideTheHorizonIsRejected() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, clock: TestClock(noon))
        let payload = telemetryPayload(vin: testVIN(70), baseTimeMs: noon, records: simpleRecords(10))
        configuration.maxQueuedBytes = payload.count + JournalFormat.entryOverhead  // one unapplied entry
        let store = try ShardStore(configuration: configuration)
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        #expect(try await writer.storeTelemetry(payload) == CommitOutcome(stored: 10))
        let locker = try SQLiteConnection(path: "\(dir.path)/AE/registry.sqlite", readOnly: false)
        try locker.exec("BEGIN IMMEDIATE")
        let done = Completions()
        let second = telemetryPayload(vin: testVIN(71), baseTimeMs: noon, records: simpleRecords(10))
        let third = telemetryPayload(vin: testVIN(72), baseTimeMs: noon, records: simpleRecords(10))
        try writer.submitTelemetry(second, completion: done.callback)
        #expect(await done.wait(for: 1))  // acknowledged: it is in the journal
        try writer.submitTelemetry(third, completion: done.callback)
        #expect(!(await done.wait(for: 1, seconds: 0.5)))  // held: the region is at its bound
        #expect(store.journalStatistics.heldSubmissions == 1)
        #expect(writer.queuedBytes == second.count + JournalFormat.entryOverhead)
        try locker.exec("ROLLBACK")
        #expect(await done.wait(for: 1))
        #expect(await writer.waitUntilApplied())
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(testVIN(71), fromMs: 0, toMs: .max).count == 10)
        #expect(try reader.track(testVIN(72), fromMs: 0, toMs: .max).count == 10)
        let late = eventPayload(vin: testVIN(70), timeMs: noon - 8 * 86_400_000, level: 1, flags: 0, dtcs: [])
        #expect(try await writer.storeEvent(late) == CommitOutcome(rejected: 1))
    }

    @Test func pruneRetentionForTheCLIDeletesOnlyWholeExpiredDays() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        for back in [0, 3, 6] {
            _ = try await store.writer(for: ae).storeTelemetry(
                telemetryPayload(
                    vin: testVIN(80), baseTimeMs: noon - Int64(back) * 86_400_000, records: simpleRecords(1)))
        }
        store.stop()
        let later = noon + 2 * 86_400_000
        let listed = try ShardStore.pruneRetention(
            stateDirectory: dir.path, region: ae, retentionDays: 4, nowMs: later, dryRun: true)
        #expect(listed == ["telemetry-2026-11-23.sqlite", "telemetry-2026-11-26.sqlite"])
        #expect(ShardReader(stateDirectory: dir.path, region: ae).partitionDays().count == 3)
        let removed = try ShardStore.pruneRetention(
            stateDirectory: dir.path, region: ae, retentionDays: 4, nowMs: later)
        #expect(removed == listed)
        #expect(ShardReader(stateDirectory: dir.path, region: ae).partitionDays().map(\.description) == ["2026-11-29"])
        #expect(try ShardReader(stateDirectory: dir.path, region: ae).vehicle(testVIN(80))?.records == 3)
    }
}
