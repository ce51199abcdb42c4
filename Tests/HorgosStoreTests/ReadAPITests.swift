import Foundation
import HorgosWire
import Synchronization
import HorgosTestSupport
import Testing

@testable import HorgosStore

@Suite(.serialized) struct ReadAPITests {
    @Test func fleetHealthCountsEachConditionOfTheRegion() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        func record(soc: UInt8, temp: Int8, level: UInt8 = 0, flags: UInt32 = 0) -> [TelemetryRecord] {
            [TelemetryRecord(soc: soc, maxCellTemp: temp, maxAlarmLevel: level, alarmFlags: flags)]
        }
        // 1: fresh, fine. 2: fresh, low SOC. 3: 30 min ago, hot. 4: 2 days ago, alarm flag. 5: fresh, level 2.
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 1000, records: record(soc: 80, temp: 30)))
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(2), baseTimeMs: noon - 1000, records: record(soc: 9, temp: 30)))
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(3), baseTimeMs: noon - 1_800_000, records: record(soc: 50, temp: 61)))
        _ = try await writer.storeTelemetry(
            telemetryPayload(
                vin: testVIN(4), baseTimeMs: noon - 2 * 86_400_000,
                records: record(soc: 10, temp: 20, flags: AlarmBit.socLow.mask)))
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(5), baseTimeMs: noon - 10, records: record(soc: 91, temp: 40, level: 2)))
        // 6: only rejected records (registered, never seen): silent.
        #expect(
            try await writer.storeTelemetry(
                telemetryPayload(vin: testVIN(6), baseTimeMs: noon + 3 * 86_400_000, records: record(soc: 1, temp: 1)))
                == CommitOutcome(rejected: 1))
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let health = try reader.fleetHealth(asOfMs: noon)
        #expect(health.vehiclesTotal == 6)
        #expect(health.reportingLastHour == 4)
        #expect(health.silentOver24h == 2)
        #expect(health.withActiveAlarms == 2)
        #expect(health.lowSOC == 1)
        #expect(health.overTemperature == 1)
        #expect(health.averageSOC == Double(80 + 9 + 50 + 10 + 91) / 5)
        #expect(try reader.activeAlarms().map(\.vin) == [testVIN(5).description, testVIN(4).description])
        #expect(try reader.vehicle(testVIN(99)) == nil)
        store.stop()
    }

    @Test func inventoryListsEveryFileWithRowsAndTimeRange() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 86_400_000, records: simpleRecords(7)))
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(2), baseTimeMs: noon, records: simpleRecords(3)))
        let files = try ShardReader(stateDirectory: dir.path, region: ae).inventory()
        #expect(files.map(\.name) == ["registry.sqlite", "telemetry-2026-11-28.sqlite", "telemetry-2026-11-29.sqlite"])
        #expect(files.map(\.rows) == [2, 7, 3])
        #expect(files[1].firstRecordMs == noon - 86_400_000 && files[1].lastRecordMs == noon - 86_400_000 + 6000)
        #expect(files.allSatisfy { $0.bytes > 0 && $0.schemaVersion == StoreSchema.currentVersion })
        store.stop()
    }

    @Test func readersAndBackupsRunWhileTheWriterCommits() async throws {
        let dir = TempDirectory()
        let backupDir = TempDirectory("backup")
        defer {
            dir.cleanup()
            backupDir.cleanup()
        }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(0), baseTimeMs: noon - 600_000, records: simpleRecords(1)))
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let vin = testVIN(1)
        let done = Completions()
        let frames = 200
        // A producer keeps the writer busy while the test reads.
        let producer = Thread {
            for k in 0..<frames {
                let payload = telemetryPayload(
                    vin: vin, baseTimeMs: noon - 500_000 + Int64(k) * 20_000, records: simpleRecords(20))
                try? writer.submitTelemetry(payload, completion: done.callback)
                usleep(2_000)
            }
        }
        producer.start()
        // The reads on a thread of their own, as fast as they go, until every frame is acknowledged and a backup
        // was taken (bounded): the cooperative pool's two threads are shared with the other suites.
        struct Observed: Sendable {
            var reads = 0
            var backups: [String] = []
            var wrong: [String] = []
        }
        let statePath = dir.path
        let backupPath = backupDir.path
        let observed = try await offThePool {
            var observed = Observed()
            var lastCount = 0
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline && (done.count < frames || observed.backups.isEmpty || observed.reads < 2) {
                let count = try reader.track(vin, fromMs: 0, toMs: .max).count
                // Whole transactions only, never going back.
                if count < lastCount || count % 20 != 0 { observed.wrong.append("\(count) after \(lastCount)") }
                lastCount = count
                _ = try reader.fleetHealth(asOfMs: noon)
                observed.reads += 1
                if observed.backups.isEmpty && count > 0 {
                    observed.backups = try ShardStore.backup(stateDirectory: statePath, region: ae, to: backupPath)
                }
            }
            return observed
        }
        let reads = observed.reads
        let backups = observed.backups
        #expect(observed.wrong.isEmpty, "\(observed.wrong.prefix(5))")
        #expect(await done.wait(for: frames))
        #expect(reads > 1)
        #expect(writer.state == .ok)
        store.stop()
        #expect(try reader.track(vin, fromMs: 0, toMs: .max).count == frames * 20)
        // The backup is a consistent, readable copy of the region taken mid-ingest.
        #expect(backups.count == 2)
        let copy = ShardReader(stateDirectory: backupDir.path, region: ae)
        #expect(copy.integrityCheck().allSatisfy { $0.ok })
        let copied = try copy.track(vin, fromMs: 0, toMs: .max).count
        #expect(copied > 0 && copied % 20 == 0 && copied <= frames * 20)
        #expect(try copy.vehicle(testVIN(0))?.records == 1)
    }

    @Test func integrityCheckReportsAFileThatIsNotADatabaseAndChecksTheOthers() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        #expect(try await writer.storeTelemetry(
            telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 60_000, records: simpleRecords(5))) != nil)
        store.stop()
        // Yesterday's partition replaced by something that is not SQLite (a bad restore, a copy gone wrong).
        let damaged = UTCDay(epochMs: noon - 86_400_000).partitionFileName
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: "\(dir.path)/AE/\(damaged)"))
        let reports = ShardReader(stateDirectory: dir.path, region: ae).integrityCheck()
        #expect(reports.map(\.name) == ["registry.sqlite", damaged, UTCDay(epochMs: noon).partitionFileName])
        #expect(reports.map(\.ok) == [true, false, true])
        #expect(reports[1].messages.joined().contains("not a database"), "\(reports[1].messages)")
    }
}

