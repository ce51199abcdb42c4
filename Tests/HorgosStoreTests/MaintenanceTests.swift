import Foundation
import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

@Suite(.serialized) struct MaintenanceTests {
    @Test func theWALIsTruncatedAfterALongReaderLetsGo() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        var configuration = makeConfiguration(dir, clock: clock)
        configuration.walTruncateBytes = 1 << 20
        let store = try ShardStore(configuration: configuration)
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        let vin = testVIN(1)
        // 501 frames of 200 records 100 ms apart: under 3 hours, all in noon's partition.
        var next = UTCDay(epochMs: noon).startMs + 3_600_000
        let records = (0..<200).map { TelemetryRecord(timeOffsetMs: UInt32($0 * 100), soc: 50) }
        func commitFrames(_ count: Int) async throws {
            for _ in 0..<count {
                let payload = telemetryPayload(vin: vin, baseTimeMs: next, records: records)
                #expect(try await writer.storeTelemetry(payload) == CommitOutcome(stored: 200))
                next += 20_000
            }
        }
        try await commitFrames(1)
        let wal = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)-wal"
        // A reader holds an old snapshot: no checkpoint can reset the WAL past it, so it grows.
        let reader = try SQLiteConnection(
            path: "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)", readOnly: true)
        try reader.exec("BEGIN")
        _ = try reader.scalar("SELECT count(*) FROM telemetry")
        try await commitFrames(400)
        let grown = StoreFiles.size(wal)
        #expect(grown > 5 << 20)
        try reader.exec("COMMIT")
        // Sustained load goes on; within the writer's check interval the WAL is truncated and stays bounded.
        var peak: Int64 = 0
        for _ in 0..<100 {
            try await commitFrames(1)
            peak = max(peak, StoreFiles.size(wal))
        }
        let final = StoreFiles.size(wal)
        #expect(final < 5 << 20, "WAL \(final) bytes after the reader left (was \(grown))")
        #expect(
            try ShardReader(stateDirectory: dir.path, region: ae).track(vin, fromMs: 0, toMs: .max).count == 501 * 200)
    }

    @Test func theIdleWriterKeepsReportingProgress() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        #expect(await writer.waitForState { $0 == .ok })
        let before = writer.statistics.lastProgressNs
        // An idle applier turns at least once a second: its progress moves with no frame at all.
        #expect(await eventually { writer.statistics.lastProgressNs > before })
        #expect(writer.statistics.lastCommitNs == 0)
    }
}

/// The partition files this process has open under `directory` (from /proc/self/fd).
func openPartitionFiles(under directory: String) -> Set<String> {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    var names: Set<String> = []
    for fd in fds {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
            target.hasPrefix(directory)
        else { continue }
        var name = String(target.split(separator: "/").last ?? "")
        for suffix in ["-wal", "-shm"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        if name.hasPrefix("telemetry-") { names.insert(name) }
    }
    return names
}

@Suite(.serialized) struct OpenFileTests {
    @Test func onlyTheDaysAroundTodayStayOpenAndOlderDaysStillDeduplicate() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let vin = testVIN(5)
        let day: Int64 = 86_400_000
        var frames: [[UInt8]] = []
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
            for back in 0...5 {
                let base = noon - Int64(back) * day
                let payload = telemetryPayload(vin: vin, baseTimeMs: base, records: simpleRecords(3))
                #expect(try await store.writer(for: ae).storeTelemetry(payload) == CommitOutcome(stored: 3))
                frames.append(payload)
            }
            store.stop()
        }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        #expect(await writer.waitForState { $0 == .ok })
        #expect(openPartitionFiles(under: dir.path) == ["telemetry-2026-11-28.sqlite", "telemetry-2026-11-29.sqlite"])
        // A resend for a closed day reopens it and is still recognised.
        #expect(try await writer.storeTelemetry(frames[4]) == CommitOutcome(duplicates: 3))
        #expect(openPartitionFiles(under: dir.path).contains("telemetry-2026-11-25.sqlite"))
    }
}
