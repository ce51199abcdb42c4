import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosWire
import Synchronization
import HorgosTestSupport
import Testing

/// `horgosctl backup` while the daemon ingests, and `horgosctl restore` into a fresh state directory
/// (issue 14, item 4).
extension DaemonEndToEndTests {
    /// What a finished tool run left: its exit status, standard output and standard error.
    struct ToolRun {
        var status: Int32
        var stdout: String
        var stderr: String
        /// Both streams, for messages in expectations.
        var output: String { stdout + stderr }
    }

    /// Runs a built tool (no HORGOS_* variables of the test's environment) to its end.
    static func runTool(_ name: String, _ arguments: [String]) async throws -> ToolRun {
        // A built product by name, or a system tool by absolute path.
        let path = name.hasPrefix("/") ? name : DaemonProcess.productsDirectory.appendingPathComponent(name).path
        let output = try await runProcess(
            path, arguments, environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS_") })
        return ToolRun(status: output.status, stdout: output.standardOutput, stderr: output.standardError)
    }

    /// Every stored (VIN, device time) of `region` under `state`, read with the sqlite3 shell read-only.
    static func storedKeys(state: String, region: String) async throws -> Set<String> {
        let directory = "\(state)/\(region)"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("telemetry-") && $0.hasSuffix(".sqlite") }
        var keys: Set<String> = []
        for file in files {
            let output = try await runProcess(
                "/usr/bin/sqlite3",
                [
                    "-readonly", "-cmd", ".timeout 30000", "\(directory)/\(file)",
                    "SELECT v.vin || ' ' || t.ts FROM telemetry t JOIN vehicles v ON v.id = t.vehicle_id",
                ])
            guard output.status == 0 else { throw HarnessError("sqlite3 failed on \(file): \(output.standardError)") }
            let data = output.stdout
            keys.formUnion(String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init))
        }
        return keys
    }

    @Test func backupDuringLoadThenRestoreIntoAFreshStateHoldsEveryRowCommittedBeforeTheBackup() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") else {
            Issue.record("sqlite3 is not installed: apt-get install sqlite3 (.ci/run installs it)")
            return
        }
        let daemon = try await started()
        let backup = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-backup-\(UUID())").path
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-restore-\(UUID())").path
        defer {
            daemon.removeState()
            try? FileManager.default.removeItem(atPath: backup)
            try? FileManager.default.removeItem(atPath: fresh)
        }
        var settings = FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 0, recordsPerFrame: 10)
        settings.initialBackoffMs = 50
        let runner = FleetRunner(
            plan: FleetPlan(
                mode: .vehicles, vehicleCount: 12,
                regions: [SimulatedRegion.named("AE")!, SimulatedRegion.named("MX")!],
                seed: 14),
            settings: settings, credentials: try PKIFleetCredentials(authority: try daemon.authority()), threads: 1)
        let load = Task { try await runner.run(duration: .seconds(6)) }

        // Under load: what the shards hold now was committed (hence acknowledged or about to be)
        // before the backup starts. With an ingest journal, acknowledged rows reach the shards within
        // the apply interval; the backup covers what was applied, so this reference holds in both designs.
        var before: [String: Set<String>] = [:]
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        repeat {
            try await Task.sleep(for: .milliseconds(300))
            before = ["AE": try await Self.storedKeys(state: daemon.stateDirectory, region: "AE"),
                      "MX": try await Self.storedKeys(state: daemon.stateDirectory, region: "MX")]
        } while before.values.contains(where: \.isEmpty) && clock.now < deadline
        #expect(before.values.allSatisfy { !$0.isEmpty }, "the load stored rows in both regions before the backup")

        let backedUp = try await Self.runTool(
            "horgosctl", ["backup", "--state", daemon.stateDirectory, "--to", backup, "--json"])
        #expect(backedUp.status == 0, "\(backedUp.output)")
        let report = try await load.value
        #expect(report.totals.errors.isEmpty)
        #expect(try await daemon.stop() == 0)
        let after = try await Self.storedKeys(state: daemon.stateDirectory, region: "AE").count
        #expect(after > before["AE"]!.count, "the load went on while the backup ran")

        let manifest = try JSONDecoder().decode(
            BackupManifestView.self, from: Data(contentsOf: URL(fileURLWithPath: backup + "/manifest.json")))
        #expect(Set(manifest.regions.map(\.region)).isSuperset(of: ["AE", "MX"]))
        #expect(manifest.finishedAtMs >= manifest.startedAtMs)

        let restored = try await Self.runTool("horgosctl", ["restore", "--state", fresh, "--from", backup])
        #expect(restored.status == 0, "\(restored.output)")
        for region in ["AE", "MX"] {
            let copy = try await Self.storedKeys(state: fresh, region: region)
            let missing = before[region]!.subtracting(copy)
            #expect(missing.isEmpty, "\(region): \(missing.count) rows committed before the backup are missing")
        }
        // The restored state is a working state directory: the store's reader opens it.
        #expect(try ShardReader(stateDirectory: fresh, region: Region("AE")!).fleetHealth().vehiclesTotal > 0)

        // Restoring onto shards that exist is refused (exit 2) and changes nothing.
        let again = try await Self.runTool("horgosctl", ["restore", "--state", fresh, "--from", backup])
        #expect(again.status == 2)
        #expect(again.output.contains("already holds"))
    }
}

/// The parts of `manifest.json` the test reads.
struct BackupManifestView: Decodable {
    struct RegionView: Decodable {
        var region: String
    }

    var startedAtMs: Int64
    var finishedAtMs: Int64
    var regions: [RegionView]
}
