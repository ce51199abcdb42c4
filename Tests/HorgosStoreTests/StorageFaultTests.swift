import Foundation
import HorgosTestSupport
import HorgosWire
import Testing

@testable import HorgosStore

/// Fills the file system of `directory` to its last block with a file named `filler`; returns its path.
@discardableResult
func fillFileSystem(_ directory: String, name: String = "filler") -> String {
    let path = "\(directory)/\(name)"
    let fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0o644)
    precondition(fd >= 0)
    let block = [UInt8](repeating: 1, count: 4096)
    while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    close(fd)
    return path
}

/// A tmpfs of `megabytes` mounted on `path` (root with CAP_SYS_ADMIN, as in CI).
func mountTmpfs(_ path: String, megabytes: Int) throws {
    try #require(canMountTmpfs, "CI=true: mounting a tmpfs failed; run as root with CAP_SYS_ADMIN")
    try #require(mountTmpfs(path, size: "\(megabytes)m"), "mounting a \(megabytes) MiB tmpfs on \(path) failed")
}

/// The number of cells of each table-leaf page (type 0x0D) among `pages` 4 KiB pages of `bytes`:
/// an upper bound of the rows a damage over exactly those pages can lose.
func tableLeafCells(_ bytes: [UInt8], pageSize: Int = 4096) -> Int {
    stride(from: 0, to: bytes.count, by: pageSize).reduce(0) { sum, start in
        bytes[start] == 0x0D ? sum + (Int(bytes[start + 3]) << 8 | Int(bytes[start + 4])) : sum
    }
}

/// Disk full, live corruption and the salvage of a damaged day file, against the store in this process.
@Suite(.serialized) struct StorageFaultTests {
    /// The journal's file system fills up under load: nothing more is acknowledged (frames wait, none
    /// dropped), the state is reported, the reserve is released; once space is back the journal writes
    /// again by itself, every frame is acknowledged once and stored, and the segment has no torn bytes.
    @Test(.enabled(if: canMountTmpfs || ciRequiresHostTools, "needs root with CAP_SYS_ADMIN to mount a tmpfs"))
    func aFullDiskHoldsEveryFrameUnacknowledgedAndTheJournalWritesThemOnceSpaceIsBack() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        try mountTmpfs(dir.path, megabytes: 24)
        defer { unmount(dir.path) }
        let log = LogSink()
        let store = try ShardStore(
            configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon), log: log))
        #expect(store.journalStatistics.reserveBytes == 1 << 20)
        let writer = try store.writer(for: ae)
        #expect(try await writer.storeTelemetry(ledgerFrames(1)[0]) == CommitOutcome(stored: 2))
        let filler = fillFileSystem(dir.path)

        let done = Completions()
        let frames = (0..<20).map { k in
            telemetryPayload(vin: testVIN(100 + k), baseTimeMs: noon - 3_600_000, records: simpleRecords(200))
        }
        for frame in frames { try writer.submitTelemetry(frame, completion: done.callback) }
        _ = await eventually(seconds: 30) { store.journalStatistics.diskFull != nil }
        let full = store.journalStatistics
        #expect(full.diskFull != nil)
        #expect(full.reserveBytes == 0)
        #expect(!(await done.wait(for: 1, seconds: 2)), "a frame was acknowledged while the disk was full")
        #expect(store.journalStatistics.heldSubmissions == frames.count)
        #expect(log.all.contains { $0.contains("journal: the file system is full") && $0.contains("released") })

        unlink(filler)
        #expect(await done.wait(for: frames.count, seconds: 20))
        #expect(store.journalStatistics.diskFull == nil)
        #expect(store.journalStatistics.reserveBytes == 1 << 20)
        #expect(log.all.contains { $0.contains("journal: space is back") })
        #expect(await store.waitUntilApplied())
        store.stop()
        #expect(done.outcomes.allSatisfy { $0 == CommitOutcome(stored: 200) })
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<20 { #expect(try reader.track(testVIN(100 + k), fromMs: 0, toMs: .max).count == 200) }
        // The segment ends at its last whole round: the next start cuts nothing.
        let restart = LogSink()
        let again = try ShardStore(
            configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon), log: restart))
        again.stop()
        #expect(!restart.all.contains { $0.contains("torn") }, "\(restart.all)")
    }

    /// A start on a full disk does not exit: it gives the reserve back, opens in the disk-full state
    /// (acknowledging nothing), and writes by itself once space is back.
    @Test(.enabled(if: canMountTmpfs || ciRequiresHostTools, "needs root with CAP_SYS_ADMIN to mount a tmpfs"))
    func aStartOnAFullDiskComesUpInTheDiskFullStateAndResumesWhenSpaceIsBack() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        try mountTmpfs(dir.path, megabytes: 16)
        defer { unmount(dir.path) }
        do {
            let store = try ShardStore(
                configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon)))
            #expect(try await store.writer(for: ae).storeTelemetry(ledgerFrames(1)[0]) == CommitOutcome(stored: 2))
            store.stop()
        }
        let filler = fillFileSystem(dir.path)
        let log = LogSink()
        let store = try ShardStore(
            configuration: makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon), log: log))
        defer { store.stop() }
        #expect(store.journalStatistics.diskFull != nil)
        #expect(log.all.contains { $0.contains("released it to start") }, "\(log.all)")
        let done = Completions()
        try store.writer(for: br).submitTelemetry(ledgerFrames(3)[2], completion: done.callback)
        #expect(!(await done.wait(for: 1, seconds: 1.5)))
        unlink(filler)
        #expect(await done.wait(for: 1, seconds: 20))
        #expect(store.journalStatistics.diskFull == nil)
        #expect(try await store.writer(for: br).waitUntilApplied())
        #expect(
            try ShardReader(stateDirectory: dir.path, region: br).track(testVIN(2), fromMs: 0, toMs: .max).count == 2)
    }

    /// A day file damaged underneath the running writer (64 KiB of random bytes past 2 MiB) is found by
    /// the periodic check and quarantined; the region goes on in a new file at once, another region
    /// never stops, the quarantine is reported until acknowledged (also after a restart), and the
    /// salvage brings back every row outside the damaged pages.
    @Test func thePeriodicCheckQuarantinesADayFileDamagedUnderTheWriter() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon))
        configuration.integrityCheckIntervalMs = 400
        let store = try ShardStore(configuration: configuration)
        let writer = try store.writer(for: ae)
        let day = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)"
        let done = Completions()
        var acked: [(vehicle: Int, base: Int64)] = []
        var frame = 0
        var unwaited = 0
        func submit(_ count: Int) throws {
            unwaited += count
            for _ in 0..<count {
                let base = noon - 3_600_000 + Int64(frame / 10) * 1_000_000
                try writer.submitTelemetry(
                    telemetryPayload(vin: testVIN(frame % 10), baseTimeMs: base, records: simpleRecords(500)),
                    completion: done.callback)
                acked.append((frame % 10, base))
                frame += 1
            }
        }
        // Grow the day file past 2 MiB + 64 KiB (the durability rounds checkpoint the WAL into it).
        while StoreFiles.size(day) < (2 << 20) + (256 << 10) && frame < 2_000 {
            try submit(10)
            #expect(await done.wait(for: unwaited))
            unwaited = 0
            #expect(await writer.waitUntilApplied())
        }
        let original = try Array(
            FileHandle(forReadingFrom: URL(fileURLWithPath: day)).readToEnd()!.dropFirst(2 << 20).prefix(64 << 10))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: day))
        try handle.seek(toOffset: 2 << 20)
        try handle.write(contentsOf: Data((0..<(64 << 10)).map { _ in UInt8.random(in: 0...255) }))
        try handle.close()
        let bound = tableLeafCells(original)

        // The writer keeps appending; the check finds the damage within its interval (plus a WAL reset).
        let brDone = Completions()
        let deadline = ContinuousClock.now + .seconds(60)
        var brFrames = 0
        while writer.statistics.quarantinedFiles == 0 && ContinuousClock.now < deadline {
            try submit(2)
            try store.writer(for: br).submitTelemetry(
                telemetryPayload(vin: testVIN(500 + brFrames), baseTimeMs: noon - 60_000, records: simpleRecords(2)),
                completion: brDone.callback)
            brFrames += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(writer.statistics.quarantinedFiles == 1)
        let quarantined = writer.unacknowledgedQuarantine
        #expect(
            quarantined.count == 1
                && quarantined[0].hasPrefix(UTCDay(epochMs: noon).partitionFileName + ".quarantined-"))
        #expect(await brDone.wait(for: brFrames, seconds: 20))
        if case .degraded = try store.writer(for: br).state { Issue.record("BR stopped") }
        try submit(5)
        #expect(await done.wait(for: unwaited, seconds: 30))
        #expect(await writer.waitUntilApplied())
        #expect(await writer.waitForState { $0 == .ok })
        #expect(try writer.acknowledgeQuarantine() == quarantined)
        #expect(writer.unacknowledgedQuarantine.isEmpty)
        store.stop()

        // Acknowledged for good: a restart does not report it again.
        let again = try ShardStore(configuration: configuration)
        #expect(try again.writer(for: ae).unacknowledgedQuarantine.isEmpty)
        again.stop()

        // The salvage: every acknowledged record is in the new file or the salvaged one, but for at
        // most the rows the damaged pages held.
        let salvaged = "\(dir.path)/salvaged.sqlite"
        let report = try ShardSalvage.salvage(file: "\(dir.path)/AE/\(quarantined[0])", to: salvaged)
        #expect(report.damagedPages.count <= 16)
        let names = Dictionary(
            uniqueKeysWithValues: try query(salvaged, "SELECT id || ' ' || vin FROM vehicles").map { line in
                let parts = line.split(separator: " ")
                return (Int64(parts[0])!, String(parts[1]))
            })
        var present = Set<String>()
        let db = try SQLiteConnection(path: salvaged, readOnly: true)
        let rows = try db.prepare("SELECT vehicle_id, ts FROM telemetry")
        while try rows.step() { present.insert("\(names[rows.int64(0)] ?? "?") \(rows.int64(1))") }
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        for k in 0..<10 {
            for record in try reader.track(testVIN(k), fromMs: 0, toMs: .max) {
                present.insert("\(testVIN(k)) \(record.timestampMs)")
            }
        }
        var missing = 0
        for (vehicle, base) in acked {
            for index in 0..<500 where !present.contains("\(testVIN(vehicle)) \(base + Int64(index) * 1000)") {
                missing += 1
            }
        }
        #expect(missing <= bound, "\(missing) acknowledged records missing; the damaged pages held at most \(bound)")
    }

    /// The salvage reads past a damaged interior page (its leaves are found by their shape: no row is
    /// lost) and loses exactly the rows of a damaged leaf page.
    @Test func salvageReadsLeavesUnderADamagedInteriorPageAndLosesOnlyADamagedLeafsRows() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
            let writer = try store.writer(for: ae)
            let done = Completions()
            for k in 0..<60 {
                try writer.submitTelemetry(
                    telemetryPayload(
                        vin: testVIN(k % 6), baseTimeMs: noon - 3_600_000 + Int64(k / 6) * 1_000_000,
                        records: simpleRecords(500)),
                    completion: done.callback)
            }
            #expect(await done.wait(for: 60))
            #expect(await store.waitUntilApplied())
            store.stop()
        }
        let day = "\(dir.path)/AE/\(UTCDay(epochMs: noon).partitionFileName)"
        let pages = try query(
            day, "SELECT pagetype || ' ' || pageno || ' ' || ncell FROM dbstat WHERE name = 'telemetry' ORDER BY pageno"
        )
        .map { $0.split(separator: " ") }
        let interior = try #require(pages.first { $0[0] == "internal" }.map { Int($0[1])! })
        let leaf = try #require(pages.last { $0[0] == "leaf" && Int($0[2])! > 0 })
        let (leafPage, leafCells) = (Int(leaf[1])!, Int(leaf[2])!)
        let total = try query(day, "SELECT count(*) FROM telemetry").first.flatMap { Int($0) } ?? 0
        #expect(total == 30_000)

        for (page, expected) in [(interior, total), (leafPage, total - leafCells)] {
            let copy = "\(dir.path)/damaged-\(page).sqlite"
            try FileManager.default.copyItem(atPath: day, toPath: copy)
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: copy))
            try handle.seek(toOffset: UInt64((page - 1) * 4096))
            try handle.write(contentsOf: Data((0..<4096).map { _ in UInt8.random(in: 0...255) }))
            try handle.close()
            let report = try ShardSalvage.salvage(file: copy, to: copy + ".salvaged")
            #expect(report.damagedPages == [page])
            #expect(report.tables.first { $0.name == "telemetry" }?.rows == expected, "page \(page)")
            #expect(try query(copy + ".salvaged", "PRAGMA integrity_check") == ["ok"])
            #expect(try query(copy + ".salvaged", "SELECT value FROM meta WHERE key = 'kind'") == ["telemetry"])
        }
    }
}
