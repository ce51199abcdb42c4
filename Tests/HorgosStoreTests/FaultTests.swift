import Foundation
import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

#if canImport(Glibc)
    import Glibc
#endif

/// Mounts a tmpfs of `size` (`64k`, `2m`) on `path` with mount(2): no child process to wait for.
func mountTmpfs(_ path: String, size: String) -> Bool { mount("tmpfs", path, "tmpfs", 0, "size=\(size)") == 0 }

/// Detaches the file system mounted on `path` (umount2 with MNT_DETACH, like `umount -l`).
func unmount(_ path: String) { _ = umount2(path, Int32(MNT_DETACH)) }

/// Whether this machine lets the tests mount a small tmpfs (root with CAP_SYS_ADMIN, as in CI).
let canMountTmpfs: Bool = {
    let probe = TempDirectory("mountprobe")
    defer { probe.cleanup() }
    guard mountTmpfs(probe.path, size: "64k") else { return false }
    unmount(probe.path)
    return true
}()

/// In CI (`CI=true`) a host-dependent test runs and fails when its tool or permission is missing,
/// instead of being skipped (`.ci/run` installs the tools and runs as root).
let ciRequiresHostTools = ProcessInfo.processInfo.environment["CI"] == "true"

@Suite(.serialized) struct FaultTests {
    /// A lock held by another process stops the region's applier, not its acknowledgements (the
    /// frames are in the journal) and not the other regions; the region applies once the lock goes.
    @Test func aLockedFileDegradesOnlyItsRegionAndItRecoversWhenTheLockGoes() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: clock, log: log))
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        #expect(
            try await writer.storeTelemetry(
                telemetryPayload(vin: testVIN(1), baseTimeMs: noon, records: simpleRecords(3)))
                == CommitOutcome(stored: 3))

        // Another process (here: another connection) takes the registry's write lock and keeps it.
        let locker = try SQLiteConnection(path: "\(dir.path)/AE/registry.sqlite", readOnly: false)
        try locker.exec("BEGIN IMMEDIATE")
        let done = Completions()
        try writer.submitTelemetry(
            telemetryPayload(vin: testVIN(2), baseTimeMs: noon, records: simpleRecords(5)), completion: done.callback)
        #expect(await done.wait(for: 1))  // acknowledged from the journal
        #expect(await writer.waitForState { if case .degraded(.locked, _) = $0 { true } else { false } })
        #expect(writer.queuedBytes > 0)  // not applied while the lock is held
        #expect(try ShardReader(stateDirectory: dir.path, region: ae).track(testVIN(2), fromMs: 0, toMs: .max).isEmpty)
        // Other regions keep working.
        #expect(
            try await store.writer(for: br).storeTelemetry(
                telemetryPayload(vin: testVIN(3), baseTimeMs: noon, records: simpleRecords(2)))
                == CommitOutcome(stored: 2))

        try locker.exec("ROLLBACK")
        #expect(await writer.waitUntilApplied())
        #expect(await writer.waitForState { $0 == .ok })
        #expect(writer.statistics.failedAttempts >= 1)
        #expect(log.all.filter { $0.contains("AE: writer degraded") }.count == 1)  // logged once, not per retry
        #expect(log.all.contains { $0.contains("AE: writer recovered from locked") })
        #expect(
            try ShardReader(stateDirectory: dir.path, region: ae).track(testVIN(2), fromMs: 0, toMs: .max).count == 5)
    }

    /// A corrupt day file is quarantined (moved aside with its earlier rows, logged, counted) and the
    /// region goes on with a new file at once, acknowledging throughout, while other regions go on.
    @Test func aCorruptDayFileIsQuarantinedAndTheRegionKeepsAcknowledgingAndApplying() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: clock))
            _ = try await store.writer(for: ae).storeTelemetry(
                telemetryPayload(vin: testVIN(1), baseTimeMs: noon, records: simpleRecords(3)))
            store.stop()
        }
        let name = UTCDay(epochMs: noon).partitionFileName
        let partition = "\(dir.path)/AE/\(name)"
        try StoreFiles.deleteDatabase(partition)
        try Data(repeating: 0x5A, count: 65_536).write(to: URL(fileURLWithPath: partition))

        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: clock, log: log))
        defer { store.stop() }
        let writer = try store.writer(for: ae)
        let done = Completions()
        try writer.submitTelemetry(
            telemetryPayload(vin: testVIN(2), baseTimeMs: noon, records: simpleRecords(4)), completion: done.callback)
        try store.writer(for: br).submitTelemetry(
            telemetryPayload(vin: testVIN(3), baseTimeMs: noon, records: simpleRecords(2)), completion: done.callback)
        #expect(await done.wait(for: 2, seconds: 5))
        #expect(await writer.waitUntilApplied(seconds: 5))
        #expect(try await store.writer(for: br).waitUntilApplied(seconds: 5))
        #expect(writer.statistics.quarantinedFiles == 1)
        #expect(await writer.waitForState { $0 == .ok })
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir.path)/AE")
        #expect(files.contains { $0.hasPrefix("\(name).quarantined-") }, "\(files)")
        #expect(log.all.contains { $0.contains("AE: \(name) is damaged; quarantined") }, "\(log.all)")
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(testVIN(2), fromMs: 0, toMs: .max).count == 4)
        #expect(try reader.quarantinedFiles().count == 1)
        #expect(try ShardReader(stateDirectory: dir.path, region: br).track(testVIN(3), fromMs: 0, toMs: .max).count == 2)
    }

    @Test(.enabled(if: canMountTmpfs || ciRequiresHostTools, "needs root with CAP_SYS_ADMIN to mount a tmpfs"))
    func aFullDiskDegradesOnlyItsRegionLosesNothingAndRecoversWhenSpaceReturns() async throws {
        try #require(canMountTmpfs, "CI=true: mounting a tmpfs failed; run as root with CAP_SYS_ADMIN")
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let regionDirectory = "\(dir.path)/AE"
        try FileManager.default.createDirectory(atPath: regionDirectory, withIntermediateDirectories: true)
        // A real 2 MiB file system for region AE only.
        try #require(mountTmpfs(regionDirectory, size: "2m"))
        defer { unmount(regionDirectory) }
        let clock = TestClock(noon)
        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, regions: [ae, br], clock: clock, log: log))
        let writer = try store.writer(for: ae)
        #expect(
            try await writer.storeTelemetry(
                telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 3_600_000, records: simpleRecords(3)))
                == CommitOutcome(stored: 3))

        // Fill the file system to the last block.
        let filler = "\(regionDirectory)/filler"
        let fd = open(filler, O_CREAT | O_WRONLY, 0o644)
        try #require(fd >= 0)
        let block = [UInt8](repeating: 1, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)

        let done = Completions()
        let frames = (0..<20).map { k in
            telemetryPayload(vin: testVIN(100 + k), baseTimeMs: noon - 3_600_000, records: simpleRecords(1000))
        }
        for frame in frames { try writer.submitTelemetry(frame, completion: done.callback) }
        #expect(await writer.waitForState { if case .degraded(.diskFull, _) = $0 { true } else { false } })
        // The journal (on another file system) acknowledges them; the region cannot apply them.
        #expect(await done.wait(for: frames.count))
        #expect(writer.queuedBytes >= frames.reduce(0) { $0 + $1.count })
        #expect(
            try await store.writer(for: br).storeTelemetry(
                telemetryPayload(vin: testVIN(2), baseTimeMs: noon, records: simpleRecords(2)))
                == CommitOutcome(stored: 2))

        // Space comes back: every waiting entry is applied, in full, without a restart.
        unlink(filler)
        #expect(await writer.waitUntilApplied(seconds: 30))
        #expect(done.outcomes.map { $0.stored + $0.duplicates }.reduce(0, +) == 20 * 1000)
        // The applier's WAL checkpoint after those commits may still find the 2 MiB file system full (the WAL and
        // the database hold the rows at once); it retries, and the region is ok once a checkpoint went through.
        #expect(await writer.waitForState(seconds: 60) { $0 == .ok })
        #expect(writer.queuedBytes == 0)
        #expect(log.all.contains { $0.contains("AE: writer degraded (disk_full)") })
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<20 { #expect(try reader.track(testVIN(100 + k), fromMs: 0, toMs: .max).count == 1000) }
        #expect(reader.integrityCheck().allSatisfy { $0.ok })
    }
}
