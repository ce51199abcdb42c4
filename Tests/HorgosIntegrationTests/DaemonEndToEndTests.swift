import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosWire
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Starts the real `horgosd` binary (built next to this test bundle) with a temporary state directory.
final class DaemonProcess {
    let directory: String
    let telemetryPort: Int
    let process = Process()
    let logPath: String

    init(regions: [String]) throws {
        directory = NSTemporaryDirectory() + "horgosd-e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        telemetryPort = try Self.freePort()
        let adminPort = try Self.freePort()
        let config = directory + "/horgosd.yaml"
        try """
        state_directory: \(directory)/state
        regions: [\(regions.joined(separator: ", "))]
        listen:
          telemetry: 127.0.0.1:\(telemetryPort)
          admin: 127.0.0.1:\(adminPort)
        store:
          durability: process
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("horgosd").path
        try #require(FileManager.default.isExecutableFile(atPath: executable), "horgosd not built at \(executable)")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--config", config]
        process.environment = ["PATH": "/usr/bin:/bin"]
        logPath = directory + "/horgosd.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Starts the daemon and waits for its "ready" log line (sent with READY=1).
    func start() async throws {
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !log.contains("horgosd: ready") {
            guard process.isRunning, Date() < deadline else { throw DaemonError.didNotBecomeReady(log) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit status.
    func stop() async throws -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(40)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            process.terminate()
            throw DaemonError.didNotStop
        }
        return process.terminationStatus
    }

    /// The development CA the daemon created in its state directory.
    func authority() throws -> FleetPKI {
        try FleetPKI(
            caCertificatePath: directory + "/state/pki/ca.pem", caPrivateKeyPath: directory + "/state/pki/ca-key.pem")
    }

    enum DaemonError: Error { case didNotBecomeReady(String), didNotStop }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(fd, raw, length) == 0, getsockname(fd, raw, &length) == 0 else {
                    throw POSIXError(.EADDRINUSE)
                }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

@Suite(.serialized) struct DaemonEndToEndTests {
    /// Vehicles and gateways stream through the real daemon; after SIGTERM every acknowledged record is
    /// in its own region's shard, and no vehicle appears in another region.
    @Test(arguments: [FleetPlan.Mode.vehicles, .gateways(2)])
    func everyAckedRecordIsStoredInItsRegionOnly(mode: FleetPlan.Mode) async throws {
        let regions = Array(SimulatedRegion.all.prefix(3))
        let codes = regions.map(\.code)
        let daemon = try DaemonProcess(regions: codes)
        try await daemon.start()
        let plan = FleetPlan(mode: mode, vehicleCount: 24, regions: regions, seed: 11)
        let settings = FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 50, recordsPerFrame: 5)
        let runner = FleetRunner(
            plan: plan, settings: settings, credentials: try PKIFleetCredentials(authority: try daemon.authority()),
            threads: 1)
        let report = try await runner.run(duration: .seconds(2))
        print(
            "horgosd e2e \(mode): \(Int(report.framesPerSecond)) frames/s, \(Int(report.recordsPerSecond)) records/s, "
                + "\(report.totals.recordsAcked) records acked")
        #expect(report.totals.errors.isEmpty)
        #expect(report.outstandingFrames == 0)
        #expect(report.totals.recordsAcked > 0)
        #expect(try await daemon.stop() == 0)

        var stored = 0
        for vehicle in plan.vehicles() {
            let home = try #require(Region(vehicle.region.code))
            let points = try ShardReader(stateDirectory: daemon.directory + "/state", region: home)
                .track(vehicle.vin, fromMs: 0, toMs: Int64.max)
            stored += points.count
            for other in codes where other != vehicle.region.code {
                let foreign = ShardReader(stateDirectory: daemon.directory + "/state", region: Region(other)!)
                #expect(try foreign.vehicle(vehicle.vin) == nil, "\(vehicle.vin) leaked into \(other)")
            }
        }
        #expect(stored == report.totals.recordsAcked)
        #expect(daemon.log.contains("region writers stopped"))
    }
}
