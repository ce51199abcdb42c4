import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosTestSupport
import HorgosWire
import NIOSSL
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One vehicle on its own connection keeping an ACK ledger: frame `s` holds `records` records `spacingMs`
/// apart from `base + s * records * spacingMs`; ACKs are cumulative, so every frame up to the highest ACK
/// is acknowledged. It never has more than `window` frames unacknowledged (and waits as long as it
/// takes, as firmware does). Its records must stay within the daemon's time horizon (now - 7 days to now
/// + 24 h): a fast run sends thousands of frames.
final class LedgerVehicle: Sendable {
    let vin: VIN
    let base: Int64
    let records: Int
    let spacingMs: Int64
    let client: WireClient
    private let sentFrames = Atomic<UInt32>(0)

    init(
        vin: VIN, base: Int64, records: Int, spacingMs: Int64 = 1000, port: Int, context: NIOSSLContext
    ) async throws {
        self.vin = vin
        self.base = base
        self.records = records
        self.spacingMs = spacingMs
        client = try await WireClient.connect(port: port, context: context)
        try await client.send(WireClient.hello())
        _ = try await client.waitFor { !$0.isEmpty }
    }

    var sent: UInt32 { sentFrames.load(ordering: .relaxed) }
    var acked: UInt32 { client.replies.compactMap(\.ack).map(\.sequence).max() ?? 0 }

    func startMs(_ sequence: UInt32) -> Int64 { base + Int64(sequence) * Int64(records) * spacingMs }

    /// Sends frames until `stop()` says so or the connection closes.
    func run(window: UInt32 = 16, until stop: @Sendable () -> Bool) async throws {
        var sequence = sent
        while !stop() && !client.isClosed {
            if sequence - acked >= window {
                try await Task.sleep(for: .milliseconds(5))
                continue
            }
            sequence += 1
            try await client.send(
                WireClient.telemetry(
                    vin: vin, sequence: sequence, startMs: startMs(sequence), records: records,
                    spacingMs: UInt32(spacingMs)))
            sentFrames.store(sequence, ordering: .relaxed)
        }
    }

    /// The timestamps of every acknowledged record.
    var ackedTimestamps: [Int64] {
        let acked = self.acked
        guard acked > 0 else { return [] }
        return (1...acked).flatMap { s in (0..<records).map { startMs(s) + Int64($0) * spacingMs } }
    }
}

/// A flag the load tasks poll (a class: an `Atomic` cannot be captured by an escaping closure).
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// The size of a file in bytes (0 when it does not exist).
func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}

/// Mounts a tmpfs of `size` (`64k`, `96m`) on `path` with mount(2): no child process to wait for.
private func mountTmpfs(_ path: String, size: String) -> Bool {
    mount("tmpfs", path, "tmpfs", 0, "size=\(size)") == 0
}

/// Detaches the file system mounted on `path` (umount2 with MNT_DETACH, like `umount -l`).
private func unmount(_ path: String) { _ = umount2(path, Int32(MNT_DETACH)) }

/// Whether this machine lets the tests mount a tmpfs (root with CAP_SYS_ADMIN, as in CI).
private let tmpfsAllowed: Bool = {
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-tmpfs-probe-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: probe) }
    guard mountTmpfs(probe, size: "64k") else { return false }
    unmount(probe)
    return true
}()

private let ciRequiresHostTools = ProcessInfo.processInfo.environment["CI"] == "true"

/// Fills the file system holding `directory` with one file; returns its path.
private func fill(_ directory: String) -> String {
    let path = "\(directory)/filler"
    let fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0o644)
    let block = [UInt8](repeating: 1, count: 65_536)
    while fd >= 0 && block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    let small = [UInt8](repeating: 1, count: 4096)
    while fd >= 0 && small.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    close(fd)
    return path
}

/// The value of an unlabelled metric in a Prometheus scrape.
private func metric(_ scrape: String, _ name: String) -> Double? {
    scrape.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
}

/// Storage faults against the real daemon (issue 26): a full disk, a day file damaged while it is
/// written, a damaged journal. Each runs a daemon under load for 10-40 s: the faults need a running
/// writer, a filled file system and a salvage between two starts.
@Suite(.serialized) struct StorageFaultEndToEndTests {
    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func context(_ daemon: DaemonProcess, vin: VIN, market: String) throws -> NIOSSLContext {
        let authority = try daemon.authority()
        return try WireClient.context(
            issued: try authority.issueVehicleCertificate(vin: vin.description, market: market),
            caPEM: try authority.caCertificatePEM)
    }

    /// The disk fills under vehicle and gateway load: the process stays up, `/health` says `disk_full`,
    /// no ACK is sent while full, ACKs resume by themselves once space is freed, every acknowledged record
    /// is in the shards, and a restart on the full disk comes up degraded instead of exiting.
    @Test(.enabled(if: tmpfsAllowed || ciRequiresHostTools, "needs root with CAP_SYS_ADMIN to mount a tmpfs"))
    func aFullDiskKeepsTheNodeUpAcknowledgesNothingAndResumesByItself() async throws {
        try #require(tmpfsAllowed, "CI=true: mounting a tmpfs failed; run as root with CAP_SYS_ADMIN")
        let daemon = try DaemonProcess(environment: [
            "HORGOS_REGIONS": "AE,TH,NO", "HORGOS_JOURNAL_SEGMENT_BYTES": "1048576",
            "HORGOS_JOURNAL_MAX_BYTES": "33554432", "HORGOS_JOURNAL_RESERVE_BYTES": "4194304",
        ])
        try #require(mountTmpfs(daemon.stateDirectory, size: "96m"))
        defer {
            unmount(daemon.stateDirectory)
            daemon.removeState()
        }
        try await daemon.start()
        let vin = VIN("LSVAU2180N2183294")!
        let ledger = try await LedgerVehicle(
            vin: vin, base: Self.nowMs() - 6 * 3_600_000, records: 20, spacingMs: 10, port: daemon.telemetryPort,
            context: try context(daemon, vin: vin, market: "AE"))
        let stop = StopFlag()
        let credentials = try PKIFleetCredentials(authority: try daemon.authority())
        let port = daemon.telemetryPort
        async let ledgerRun: Void = ledger.run { stop.isSet }
        async let vehicles = FleetRunner(
            plan: FleetPlan(
                mode: .vehicles, vehicleCount: 8, regions: ["AE", "TH"].compactMap(SimulatedRegion.named), seed: 3),
            settings: FleetSettings(port: port, reportIntervalMs: 50, recordsPerFrame: 5),
            credentials: credentials, threads: 1
        ).run(duration: .seconds(20))
        async let gateway = FleetRunner(
            plan: FleetPlan(mode: .gateways(1), vehicleCount: 10, regions: [SimulatedRegion.named("NO")!], seed: 4),
            settings: FleetSettings(port: port, reportIntervalMs: 50, recordsPerFrame: 20),
            credentials: credentials, threads: 1
        ).run(duration: .seconds(20))

        try await Task.sleep(for: .seconds(2))
        #expect(ledger.acked > 0)
        let filler = try await offThePool { fill(daemon.stateDirectory) }
        let clock = ContinuousClock()
        var deadline = clock.now + .seconds(20)
        while clock.now < deadline, !(try await daemon.httpGet("/health").body.contains("disk_full")) {
            try await Task.sleep(for: .milliseconds(100))
        }
        let health = try await daemon.httpGet("/health")
        #expect(health.status == 200 && health.body.contains("degraded: disk_full"), "\(health)")
        let region = try await daemon.httpGet("/health/AE")
        #expect(region.status == 503 && region.body.contains("disk_full"), "\(region)")
        #expect(try await daemon.httpGet("/status").body.contains("\"diskFull\":true"))
        try await Task.sleep(for: .milliseconds(500))
        let first = try await daemon.httpGet("/metrics").body
        #expect(metric(first, "horgos_disk_full") == 1)
        let ackedWhileFull = ledger.acked
        try await Task.sleep(for: .seconds(3))
        let second = try await daemon.httpGet("/metrics").body
        #expect(metric(second, "horgos_acks_total") == metric(first, "horgos_acks_total"), "ACKs sent while full")
        #expect(ledger.acked == ackedWhileFull)
        #expect(daemon.process?.isRunning == true)

        unlink(filler)
        let freed = clock.now
        deadline = clock.now + .seconds(20)
        while clock.now < deadline, try await daemon.httpGet("/health").body != "ok\n" {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await daemon.httpGet("/health").body == "ok\n")
        while clock.now < deadline && ledger.acked == ackedWhileFull { try await Task.sleep(for: .milliseconds(20)) }
        #expect(ledger.acked > ackedWhileFull, "ACKs did not resume")
        print("disk full: ACKs resumed \(clock.now - freed) after space was freed")
        let (vehicleReport, gatewayReport) = try await (vehicles, gateway)
        stop.set()
        try await ledgerRun
        _ = try await ledger.client.waitFor(timeout: .seconds(10)) { _ in ledger.acked == ledger.sent }
        #expect(ledger.acked == ledger.sent)
        await ledger.client.close()
        #expect(try await daemon.stop() == 0)

        // Every acknowledged record is in the shards.
        let track = Set(
            try ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
                .track(vin, fromMs: 0, toMs: .max).map(\.timestampMs))
        let unstored = Set(ledger.ackedTimestamps).subtracting(track)
        #expect(unstored.isEmpty, "\(unstored.count) of \(ledger.ackedTimestamps.count) acknowledged records missing")
        #expect(vehicleReport.totals.recordsAcked > 0 && gatewayReport.totals.recordsAcked > 0)
        var stored = 0
        for code in ["AE", "TH"] {
            stored += try ShardReader(stateDirectory: daemon.stateDirectory, region: Region(code)!).inventory()
                .filter { $0.kind == "telemetry" }.reduce(0) { $0 + $1.rows }
        }
        #expect(stored - track.count >= vehicleReport.totals.recordsAcked)
        let gatewayRows = try ShardReader(stateDirectory: daemon.stateDirectory, region: Region("NO")!).inventory()
            .filter { $0.kind == "telemetry" }.reduce(0) { $0 + $1.rows }
        #expect(gatewayRows >= gatewayReport.totals.recordsAcked)

        // A restart on the full disk comes up (healthy process, degraded), and resumes once space is back.
        let again = try await offThePool { fill(daemon.stateDirectory) }
        try await daemon.start()
        let restarted = try await daemon.httpGet("/health")
        #expect(restarted.status == 200 && restarted.body.contains("disk_full"), "\(restarted)")
        unlink(again)
        deadline = clock.now + .seconds(20)
        while clock.now < deadline, try await daemon.httpGet("/health").body != "ok\n" {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await daemon.httpGet("/health").body == "ok\n")
        #expect(try await daemon.stop() == 0)
    }

    /// 64 KiB of random bytes written past 2 MiB of a region's current day file while the daemon writes
    /// it: within the check's interval the region is quarantined and acknowledging into a new file,
    /// another region never stops, `/health/AE` reports it until `horgosctl shards acknowledge`, and
    /// `horgosctl shards salvage` brings back every row outside the damaged pages (read with sqlite3).
    @Test func aDayFileDamagedWhileWrittenIsQuarantinedAndSalvaged() async throws {
        let daemon = try DaemonProcess(environment: [
            "HORGOS_REGIONS": "AE,TH", "HORGOS_STORE_INTEGRITY_CHECK_INTERVAL_SECONDS": "2",
        ])
        defer { daemon.removeState() }
        try await daemon.start()
        // The store's and the log's threads carry their names to the kernel (top -H, a stuck-thread hunt).
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/task")) ?? []
        let threads = Set(
            tasks.compactMap {
                try? String(contentsOfFile: "/proc/\(daemon.pid)/task/\($0)/comm", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            })
        #expect(
            threads.isSuperset(of: ["horgos-journal", "horgos-apply-0", "horgos-check", "horgos-log"]),
            "\(threads.sorted())")
        let today = UTCDay(epochMs: Self.nowMs())
        let dayFile = "\(daemon.stateDirectory)/AE/\(today.partitionFileName)"
        let vins = [VIN("LSVAU2180N2183294")!, VIN("LSVAU2180N2183295")!]
        var built: [LedgerVehicle] = []
        for vin in vins {
            built.append(
                try await LedgerVehicle(
                    vin: vin, base: today.startMs + 60_000, records: 200, spacingMs: 10, port: daemon.telemetryPort,
                    context: try context(daemon, vin: vin, market: "AE")))
        }
        let ae = built
        let thVIN = VIN("LSVAU2180N2183296")!
        let th = try await LedgerVehicle(
            vin: thVIN, base: Self.nowMs() - 3_600_000, records: 1, port: daemon.telemetryPort,
            context: try context(daemon, vin: thVIN, market: "TH"))
        let stop = StopFlag()
        let fleet = ae + [th]
        let runs = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for vehicle in fleet { group.addTask { try await vehicle.run { stop.isSet } } }
                try await group.waitForAll()
            }
        }
        let clock = ContinuousClock()
        var deadline = clock.now + .seconds(60)
        while clock.now < deadline && fileSize(dayFile) < (2 << 20) + (256 << 10) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(fileSize(dayFile) >= (2 << 20) + (256 << 10))
        // The damage: 64 KiB of random bytes at 2 MiB; the pages' cells before it bound the rows it can cost.
        let original = try await offThePool { () -> [UInt8] in
            guard let handle = FileHandle(forUpdatingAtPath: dayFile) else {
                throw HarnessError("cannot open \(dayFile)")
            }
            try handle.seek(toOffset: 2 << 20)
            let bytes = Array(try handle.read(upToCount: 64 << 10) ?? Data())
            try handle.seek(toOffset: 2 << 20)
            try handle.write(contentsOf: Data((0..<(64 << 10)).map { _ in UInt8.random(in: 0...255) }))
            try handle.close()
            return bytes
        }
        var bound = 0
        for start in stride(from: 0, to: original.count, by: 4096) where original[start] == 0x0D {
            bound += Int(original[start + 3]) << 8 | Int(original[start + 4])
        }
        let damagedAt = clock.now
        let thBefore = th.acked
        deadline = clock.now + .seconds(40)
        while clock.now < deadline, !(try await daemon.httpGet("/health/AE").body.contains("quarantined")) {
            try await Task.sleep(for: .milliseconds(100))
        }
        let health = try await daemon.httpGet("/health/AE")
        #expect(health.status == 200 && health.body.contains("quarantined, not acknowledged"), "\(health)")
        print("live corruption: quarantined \(clock.now - damagedAt) after the damage (check interval 2 s)")
        let metrics = try await daemon.httpGet("/metrics").body
        #expect(metrics.contains("horgos_region_quarantine_unacknowledged{region=\"AE\"} 1"))
        // Both regions keep acknowledging: AE into its new file.
        let aeAfter = ae.map(\.acked)
        try await Task.sleep(for: .seconds(2))
        #expect(th.acked > thBefore)
        #expect(zip(ae, aeAfter).allSatisfy { $0.acked > $1 }, "AE stopped acknowledging")
        #expect(try await daemon.httpGet("/health/TH").body == "ok TH\n")

        let ack = try await DaemonEndToEndTests.runTool(
            "horgosctl", ["shards", "acknowledge", "AE", "--admin", "http://127.0.0.1:\(daemon.adminPort)"])
        #expect(ack.status == 0, "\(ack.stderr)")
        #expect(try await daemon.httpGet("/health/AE").body == "ok AE\n")
        stop.set()
        try await runs.value
        for vehicle in ae { _ = try await vehicle.client.waitFor { _ in vehicle.acked == vehicle.sent } }
        #expect(try await daemon.stop() == 0)

        let quarantined = try FileManager.default.contentsOfDirectory(atPath: "\(daemon.stateDirectory)/AE")
            .filter {
                $0.hasPrefix(today.partitionFileName + ".quarantined-") && !$0.hasSuffix("-wal")
                    && !$0.hasSuffix("-shm")
            }
        try #require(quarantined.count == 1, "\(quarantined)")
        let salvaged = daemon.stateDirectory + "/salvaged.sqlite"
        let salvage = try await DaemonEndToEndTests.runTool(
            "horgosctl", ["shards", "salvage", "\(daemon.stateDirectory)/AE/\(quarantined[0])", "--to", salvaged])
        #expect(salvage.status == 0, "\(salvage.stderr)")
        print("salvage: \(salvage.stdout)")
        let dump = try await DaemonEndToEndTests.runTool(
            "/usr/bin/sqlite3",
            [salvaged, "SELECT v.vin || ' ' || t.ts FROM telemetry t JOIN vehicles v ON v.id = t.vehicle_id"])
        #expect(dump.status == 0, "sqlite3 must read the salvaged file: \(dump.stderr)")
        var present = Set(dump.stdout.split(separator: "\n").map(String.init))
        let reader = ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
        for vehicle in ae {
            for record in try reader.track(vehicle.vin, fromMs: 0, toMs: .max) {
                present.insert("\(vehicle.vin) \(record.timestampMs)")
            }
        }
        let missing = ae.reduce(0) { sum, vehicle in
            sum + vehicle.ackedTimestamps.filter { !present.contains("\(vehicle.vin) \($0)") }.count
        }
        #expect(
            missing <= bound, "\(missing) acknowledged records are in neither file; the damaged pages held \(bound)")
    }

    /// One entry of a journal segment as the test reads it (the layout of README "Journal format").
    struct LedgerEntry {
        var offset: Int
        var length: Int
        var lsn: UInt64
        var vin: String
        var timestamps: [Int64]
    }

    /// The TELEMETRY entries of a segment file's bytes.
    static func entries(_ bytes: [UInt8]) -> [LedgerEntry] {
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            bytes[at..<(at + MemoryLayout<T>.size)].reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
        var out: [LedgerEntry] = []
        var offset = 16
        while offset + 30 <= bytes.count {
            let length = Int(le(offset, UInt32.self))
            guard length >= 30, offset + length <= bytes.count else { break }
            let payload = offset + 26 + Int(le(offset + 24, UInt16.self))
            if bytes[offset + 12] == 1 {
                let base = Int64(bitPattern: le(payload, UInt64.self))
                let count = Int(le(payload + 26, UInt16.self))
                out.append(
                    LedgerEntry(
                        offset: offset, length: length, lsn: le(offset + 4, UInt64.self),
                        vin: String(decoding: bytes[(payload + 8)..<(payload + 25)], as: UTF8.self),
                        timestamps: (0..<count).map { base + Int64($0) * 1000 }))
            }
            offset += length
        }
        return out
    }

    /// What the test reads of `horgosctl journal check --json`.
    struct CheckReport: Decodable {
        struct Damage: Decodable {
            var afterLSN: UInt64
            var resumesAtLSN: UInt64?
            var regionsNotAppliedPast: [String]
        }
        struct Position: Decodable {
            var appliedLSN: UInt64
            var replayAfterLSN: UInt64
        }
        var damage: [Damage]
        var regions: [Position] = []
    }

    /// Waits (at most 30 s) until every region's applier has applied everything acknowledged.
    func waitUntilApplied(_ daemon: DaemonProcess) async throws {
        struct Status: Decodable {
            struct Region: Decodable { var applyLagEntries: Int }
            var regions: [Region]
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            let body = try await daemon.httpGet("/status").body
            if let status = try? JSONDecoder().decode(Status.self, from: Data(body.utf8)),
                status.regions.allSatisfy({ $0.applyLagEntries == 0 })
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("the regions did not apply everything within 30 s")
    }

    /// Vehicles of AE and TH (alternating) keeping ACK ledgers until each has `frames` frames acknowledged.
    func ledgerLoad(_ daemon: DaemonProcess, frames: UInt32) async throws -> [LedgerVehicle] {
        var vehicles: [LedgerVehicle] = []
        for (index, market) in ["AE", "TH", "AE", "TH"].enumerated() {
            let vin = VIN("LSVAU2180N218330\(index)")!
            vehicles.append(
                try await LedgerVehicle(
                    vin: vin, base: Self.nowMs() - 2 * 3_600_000, records: 5,
                    port: daemon.telemetryPort, context: try context(daemon, vin: vin, market: market)))
        }
        let stop = StopFlag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for vehicle in vehicles {
                group.addTask { try await vehicle.run(window: 8) { stop.isSet || vehicle.acked >= frames } }
            }
            try await group.waitForAll()
        }
        return vehicles
    }

    /// Damage in the middle of a journal segment after a kill -9, with entries no region applied: the
    /// start refuses, `horgosctl journal check` names the damage and the regions that need it, and
    /// after `horgosctl journal salvage` every acknowledged record is stored except exactly those of
    /// the entries in the damaged bytes; the next LSN is past every one written. Then the same with
    /// every region applied past the damage: nothing acknowledged is missing.
    @Test func journalSalvageAfterKillNineLosesOnlyTheEntriesInTheDamagedBytes() async throws {
        for applied in [false, true] {
            var environment = ["HORGOS_REGIONS": "AE,TH", "HORGOS_JOURNAL_SEGMENT_BYTES": "1048576"]
            // Not applied: entries wait a minute for their applier, so the kill finds them all in the journal.
            if !applied { environment["HORGOS_STORE_APPLY_INTERVAL_MS"] = "60000" }
            let daemon = try DaemonProcess(environment: environment)
            defer { daemon.removeState() }
            try await daemon.start()
            let vehicles = try await ledgerLoad(daemon, frames: 300)
            if applied {
                try await waitUntilApplied(daemon)
                // And recorded as applied where a start after a kill -9 reads it (the checkpoint's files):
                // `journal check` on the live state directory says where each region's replay would start.
                let configuration = daemon.stateDirectory + "/horgosctl.yaml"
                try "regions: [AE, TH]\n".write(toFile: configuration, atomically: true, encoding: .utf8)
                let recorded = await eventually(seconds: 60, pollMilliseconds: 500) {
                    guard let check = try? await DaemonEndToEndTests.runTool(
                            "horgosctl",
                            ["journal", "check", "--config", configuration, "--state", daemon.stateDirectory, "--json"]),
                        let report = try? JSONDecoder().decode(CheckReport.self, from: Data(check.stdout.utf8))
                    else { return false }
                    return report.regions.count == 2
                        && report.regions.allSatisfy { $0.appliedLSN > 0 && $0.replayAfterLSN >= $0.appliedLSN }
                }
                #expect(recorded, "the applied LSNs were not recorded within 60 s")
            }
            try await daemon.stop(signal: SIGKILL)
            // The newest segment with entries: its middle gets 4 KiB of garbage.
            let journal = daemon.stateDirectory + "/journal"
            let segments = try FileManager.default.contentsOfDirectory(atPath: journal).filter { $0.hasSuffix(".log") }
                .sorted().filter { fileSize("\(journal)/\($0)") > 64 << 10 }
            let name = try #require(segments.last)
            let path = "\(journal)/\(name)"
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let damageAt = original.count / 2
            var damaged = original
            for index in damageAt..<(damageAt + 4096) { damaged[index] = UInt8.random(in: 0...255) }
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            let entries = Self.entries(original)
            let lost = entries.filter { $0.offset < damageAt + 4096 && $0.offset + $0.length > damageAt }
            #expect(!lost.isEmpty)
            let highest = entries.map(\.lsn).max() ?? 0

            // horgosctl reads the daemon's configuration (here: its regions).
            let configuration = daemon.stateDirectory + "/horgosctl.yaml"
            try "regions: [AE, TH]\n".write(toFile: configuration, atomically: true, encoding: .utf8)
            let check = try await DaemonEndToEndTests.runTool(
                "horgosctl",
                ["journal", "check", "--config", configuration, "--state", daemon.stateDirectory, "--json"])
            #expect(check.status == 5, "\(check.output)")
            let report = try JSONDecoder().decode(CheckReport.self, from: Data(check.stdout.utf8))
            let damage = try #require(report.damage.first)
            #expect(damage.afterLSN == lost.first!.lsn - 1)
            #expect(damage.resumesAtLSN == lost.last!.lsn + 1)
            #expect(damage.regionsNotAppliedPast == (applied ? [] : ["AE", "TH"]))
            await #expect(throws: HarnessError.self) { try await daemon.start(timeout: .seconds(60)) }
            #expect(daemon.log.contains("journal_corrupt"))

            let salvage = try await DaemonEndToEndTests.runTool(
                "horgosctl", ["journal", "salvage", "--config", configuration, "--state", daemon.stateDirectory])
            #expect(salvage.status == 0, "\(salvage.output)")
            #expect(salvage.stdout.contains(applied ? "nothing acknowledged is lost" : "regions that had not applied"))
            try await daemon.start()
            try await waitUntilApplied(daemon)
            // A new frame takes an LSN above every one ever written.
            let extraVIN = VIN("LSVAU2180N2183399")!
            let extra = try await LedgerVehicle(
                vin: extraVIN, base: Self.nowMs() - 60_000, records: 1, port: daemon.telemetryPort,
                context: try context(daemon, vin: extraVIN, market: "AE"))
            try await extra.run { extra.acked >= 1 }
            _ = try await extra.client.waitFor { _ in extra.acked >= 1 }
            let durable = metric(try await daemon.httpGet("/metrics").body, "horgos_journal_durable_lsn") ?? 0
            #expect(durable > Double(highest), "LSN \(durable) reused one of 1...\(highest)")
            #expect(try await daemon.stop() == 0)

            // The ledger: every acknowledged record, except those of the entries in the damaged bytes
            // (and none of them when every region had applied them).
            let lostRecords = Set(lost.flatMap { entry in entry.timestamps.map { "\(entry.vin) \($0)" } })
            var missing = Set<String>()
            for (index, vehicle) in vehicles.enumerated() {
                let market = index % 2 == 0 ? "AE" : "TH"
                let stored = Set(
                    try ShardReader(stateDirectory: daemon.stateDirectory, region: Region(market)!)
                        .track(vehicle.vin, fromMs: 0, toMs: .max).map(\.timestampMs))
                for timestamp in vehicle.ackedTimestamps where !stored.contains(timestamp) {
                    missing.insert("\(vehicle.vin) \(timestamp)")
                }
            }
            if applied {
                #expect(missing.isEmpty, "\(missing.count) acknowledged records missing")
            } else {
                #expect(
                    !missing.isEmpty && missing.isSubset(of: lostRecords),
                    "\(missing.subtracting(lostRecords).count) outside the damage")
            }
        }
    }
}
