import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosTestSupport
import HorgosWire
import Testing

/// The simulator and the demo against the real daemon (issue 5, item 4). Part of the serialized
/// daemon suite so that no two daemons compete for the machine.
extension DaemonEndToEndTests {
    @Test func simulatorResendsAfterReconnectsAndEveryRecordIsStoredExactlyOnce() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.removeState() }
        try await daemon.start()
        var settings = FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 0, recordsPerFrame: 10)
        settings.initialBackoffMs = 50
        let report = try await FleetRunner(
            plan: FleetPlan(mode: .vehicles, vehicleCount: 16, regions: [SimulatedRegion.named("BR")!], seed: 31),
            settings: settings, credentials: try PKIFleetCredentials(authority: try daemon.authority()), threads: 1
        ).run(duration: .seconds(4), churnPerMinute: 90)
        #expect(try await daemon.stop() == 0)
        #expect(report.totals.errors.isEmpty)
        #expect(report.outstandingFrames == 0)
        #expect(report.totals.disconnects > 0, "churn dropped connections")
        #expect(report.totals.resentFrames > 0, "unacknowledged frames were resent after reconnecting")
        // Fast mode generates whole frames only, so every generated record was acknowledged once...
        #expect(report.totals.recordsAcked == report.totals.recordsGenerated)
        // ...and is in the shard exactly once, resends notwithstanding.
        let reader = ShardReader(stateDirectory: daemon.stateDirectory, region: Region("BR")!)
        let rows = try reader.inventory().filter { $0.kind == "telemetry" }.reduce(0) { $0 + $1.rows }
        #expect(rows == report.totals.recordsGenerated)
    }

    @Test func theDemoInShortModeReportsWhatIsInTheShards() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-demo-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let demo = Process()
        demo.executableURL = DaemonProcess.productsDirectory.appendingPathComponent("horgosctl")
        demo.arguments = ["demo", "--state", state, "--duration", "4", "--vehicles", "120", "--interval", "0.5",
                          "--json"]
        let out = Pipe()
        demo.standardOutput = out
        demo.standardError = FileHandle.nullDevice
        try demo.run()
        let data = try await offThePool {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            demo.waitUntilExit()
            return data
        }
        #expect(demo.terminationStatus == 0)
        let summary = try JSONDecoder().decode(DemoSummaryView.self, from: data)
        #expect(summary.vehicles == 120)
        #expect(summary.daemonExitStatus == 0)
        #expect(summary.errors.isEmpty)
        #expect(summary.recordsAcked > 0)
        // The fleet table is what the shards say, region by region, and covers the whole fleet.
        var rows = 0
        for region in summary.regions {
            let reader = ShardReader(stateDirectory: state, region: Region(region.region)!)
            #expect(try reader.fleetHealth().vehiclesTotal == region.vehiclesTotal)
            rows += try reader.inventory().filter { $0.kind == "telemetry" }.reduce(0) { $0 + $1.rows }
        }
        #expect(summary.regions.reduce(0) { $0 + $1.vehiclesTotal } == 120)
        #expect(rows == summary.recordsAcked)
    }
}

extension DaemonEndToEndTests {
    @Test func theDemosProgressIsOneLinePerUpdateWhenItsOutputIsNotATerminal() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-demo-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let demo = Process()
        demo.executableURL = DaemonProcess.productsDirectory.appendingPathComponent("horgosctl")
        demo.arguments = ["demo", "--state", state, "--duration", "3", "--vehicles", "20", "--interval", "0.5"]
        let out = Pipe()
        demo.standardOutput = out
        demo.standardError = FileHandle.nullDevice
        try demo.run()
        let text = try await offThePool {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            demo.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        #expect(demo.terminationStatus == 0)
        #expect(!text.contains("\r"), "no carriage return when stdout is a pipe")
        let progress = text.split(separator: "\n").filter { $0.contains("records acked") && $0.contains("ack p99") }
        #expect(progress.count >= 2, "one progress line per update: \(text)")
        #expect(progress.allSatisfy { $0.count < 120 }, "each update is its own short line")
    }
}

/// The parts of `horgosctl demo --json` the test reads.
struct DemoSummaryView: Decodable {
    struct RegionView: Decodable {
        var region: String
        var vehiclesTotal: Int
    }

    var vehicles: Int
    var recordsAcked: Int
    var daemonExitStatus: Int
    var errors: [String: Int]
    var regions: [RegionView]
}
