import ArgumentParser
import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosWire

#if canImport(Glibc)
import Glibc
#endif

/// `horgosctl demo`: the whole system in one command.
///
/// Starts `horgosd` on loopback with a development PKI, drives a simulated fleet over mutual TLS for
/// a while, stops the daemon cleanly, and shows what landed: fleet health per region, sample alarms,
/// throughput and ACK latency. The data stays in the state directory for the other subcommands.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start horgosd, drive a simulated fleet over mutual TLS, and show fleet health.",
        discussion: """
            The data is kept in --state (default ./horgos-state, where horgosd and horgosctl look by \
            default), so `horgosctl fleet`, `alarms`, `vehicle VIN` and `shards` work on it afterwards.
            """)

    @Option(help: "State directory for the daemon and its shards.") var state = "./horgos-state"
    @Option(help: "Seconds of simulated traffic.") var duration = 30.0
    @Option(help: "Simulated vehicles, one TLS connection each.") var vehicles = 2000
    @Option(help: "Seconds between two readings of a vehicle.") var interval = 1.0
    @Option(help: "Share of the vehicles that speak GB/T 32960 (on the GB/T 32960 listener).")
    var gbt32960Share = 0.1
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        guard gbt32960Share >= 0 && gbt32960Share < 1 else { throw ValidationError("--gbt32960-share must be 0..<1") }
        guard vehicles >= 1 && vehicles <= 50_000 else { throw ValidationError("--vehicles must be 1...50000") }
        guard duration >= 1 else { throw ValidationError("--duration must be at least 1 second") }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    func run() async throws {
        let stateDirectory = URL(fileURLWithPath: state).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let say: (String) -> Void = { line in
            if !json { print(line) } else { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        let daemon = try DemoDaemon(stateDirectory: stateDirectory)
        say("starting horgosd (state \(stateDirectory), telemetry 127.0.0.1:\(daemon.telemetryPort), admin "
            + "http://127.0.0.1:\(daemon.adminPort))")
        try await daemon.start()
        let report: FleetReport
        var gbtReport: GBT32960FleetReport?
        do {
            let authority = try FleetPKI.authority(inDirectory: stateDirectory + "/pki")
            let gbtVehicles = Int((Double(vehicles) * gbt32960Share).rounded())
            let gbt = GBT32960DemoShare(
                vehicles: gbtVehicles, port: daemon.gbt32960Port, interval: interval,
                credentials: try PKIFleetCredentials(authority: authority))
            let gbtRun = Task { try await gbt.run(duration: duration) }
            let runner = FleetRunner(
                plan: FleetPlan(mode: .vehicles, vehicleCount: max(1, vehicles - gbtVehicles), seed: 2026),
                settings: FleetSettings(port: daemon.telemetryPort, reportIntervalMs: Int(interval * 1000)),
                credentials: try PKIFleetCredentials(authority: authority))
            say("driving \(vehicles) simulated vehicles over mutual TLS for \(Int(duration)) s ...")
            let showProgress = !json
            let progress = DemoProgress(terminal: isatty(STDOUT_FILENO) == 1)
            report = try await runner.run(duration: .milliseconds(Int64(duration * 1000))) { snapshot, elapsed in
                guard showProgress else { return }
                let line = String(
                    format: "  %3.0fs  %5d connected  %9d records acked  ack p99 %6.1f ms",
                    elapsed, snapshot.connected, snapshot.recordsAcked, Double(snapshot.ackLatencyMicros.p99) / 1000)
                FileHandle.standardOutput.write(Data(progress.render(line).utf8))
            }
            if showProgress { FileHandle.standardOutput.write(Data(progress.finish.utf8)) }
            gbtReport = try await gbtRun.value
        } catch {
            _ = try? await daemon.stop()
            throw error
        }
        let exit = try await daemon.stop()
        say(exit == 0 ? "horgosd stopped cleanly (exit 0)" : "horgosd exited with status \(exit); see \(daemon.logPath)")

        var health: [FleetHealth] = []
        var alarms: [VehicleAlarm] = []
        // Every region with data: the native fleet's and the GB/T 32960 share's.
        let withData = Set(report.vehiclesByRegion.keys).union(
            gbtReport == nil ? [] : Region.defaultSet.map(\.code).filter {
                FileManager.default.fileExists(atPath: stateDirectory + "/" + $0)
            })
        for region in withData.sorted() {
            guard let code = Region(region) else { continue }
            let reader = ShardReader(stateDirectory: stateDirectory, region: code)
            guard let regionHealth = try? reader.fleetHealth() else { continue }
            health.append(regionHealth)
            alarms.append(contentsOf: (try? reader.activeAlarms(limit: 3)) ?? [])
        }
        var summary = DemoSummary(
            stateDirectory: stateDirectory, vehicles: report.vehicles + (gbtReport?.vehicles ?? 0),
            seconds: report.seconds,
            recordsAcked: report.totals.recordsAcked + (gbtReport?.framesAnswered ?? 0),
            framesAcked: report.totals.framesAcked + (gbtReport?.framesAnswered ?? 0),
            recordsPerSecond: report.recordsPerSecond, ackLatencyMs: .init(report.totals.ackLatencyMicros),
            errors: report.totals.errors, daemonExitStatus: Int(exit), regions: health,
            sampleAlarms: Array(alarms.prefix(8)))
        summary.gbt32960 = gbtReport.map { GBT32960DemoShare.summary($0, stateDirectory: stateDirectory) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(summary.humanReport())
        }
        if exit != 0 || !report.totals.errors.isEmpty || report.outstandingFrames > 0 { throw ExitCode(5) }
        if let gbtReport, !gbtReport.errors.isEmpty || gbtReport.outstandingFrames > 0 { throw ExitCode(5) }
    }
}

/// What the demo measured and found, for the table and for `--json`.
struct DemoSummary: Codable {
    struct Latency: Codable {
        var p50: Double
        var p99: Double
        var p999: Double
        var max: Double

        init(_ micros: FleetSnapshot.Latency) {
            p50 = Double(micros.p50) / 1000
            p99 = Double(micros.p99) / 1000
            p999 = Double(micros.p999) / 1000
            max = Double(micros.max) / 1000
        }
    }

    var stateDirectory: String
    /// The GB/T 32960 share of the fleet (nil with --gbt32960-share 0).
    var gbt32960: GBT32960DemoSummary?
    var vehicles: Int
    var seconds: Double
    var recordsAcked: Int
    var framesAcked: Int
    var recordsPerSecond: Double
    var ackLatencyMs: Latency
    var errors: [String: Int]
    var daemonExitStatus: Int
    var regions: [FleetHealth]
    var sampleAlarms: [VehicleAlarm]

    func humanReport() -> String {
        var lines: [String] = gbt32960.map { [""] + $0.lines } ?? []
        lines += ["", "Fleet health per region"]
        let header = ["region", "vehicles", "reporting 1h", "silent >24h", "alarms", "SOC<10%", "over-temp", "avg SOC"]
        var rows = [header]
        for h in regions {
            rows.append([
                h.region, "\(h.vehiclesTotal)", "\(h.reportingLastHour)", "\(h.silentOver24h)", "\(h.withActiveAlarms)",
                "\(h.lowSOC)", "\(h.overTemperature)", h.averageSOC.map { String(format: "%.1f %%", $0) } ?? "-",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  "))
        }
        lines.append("")
        lines.append("Sample alarms")
        if sampleAlarms.isEmpty { lines.append("  (none active)") }
        for alarm in sampleAlarms {
            let level = alarm.maxAlarmLevel.map { "level \($0)" } ?? "level -"
            lines.append("  \(alarm.vin)  \(level)  \(alarm.alarmNames.joined(separator: ", "))")
        }
        lines.append("")
        lines.append(String(
            format: "Throughput: %d records acked in %.1f s (%.0f records/s) from %d vehicles",
            recordsAcked, seconds, recordsPerSecond, vehicles))
        lines.append(String(format: "ACK latency: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
                            ackLatencyMs.p50, ackLatencyMs.p99, ackLatencyMs.p999, ackLatencyMs.max))
        lines.append("Errors: " + (errors.isEmpty ? "none" : errors.map { "\($0)=\($1)" }.joined(separator: " ")))
        lines.append("")
        lines.append("The data is in \(stateDirectory). Try:")
        let stateArgument = stateDirectory == URL(fileURLWithPath: "./horgos-state").standardizedFileURL.path
            ? "" : " --state \(stateDirectory)"
        let sampleVIN = sampleAlarms.first?.vin ?? VINFactory.vin(index: 0, seed: 2026).description
        lines.append("  horgosctl fleet\(stateArgument)")
        lines.append("  horgosctl alarms\(stateArgument)")
        lines.append("  horgosctl vehicle \(sampleVIN)\(stateArgument) --from 1h")
        lines.append("  horgosctl shards --check\(stateArgument)")
        lines.append("  horgosctl export --region AE --from 1h --to 0s --format csv\(stateArgument) | head")
        return lines.joined(separator: "\n")
    }
}

/// The daemon the demo runs: `horgosd` from beside this executable, on free loopback ports.
final class DemoDaemon {
    let stateDirectory: String
    let telemetryPort: Int
    let adminPort: Int
    let gbt32960Port: Int
    let logPath: String
    var process: Process?

    init(stateDirectory: String) throws {
        self.stateDirectory = stateDirectory
        self.telemetryPort = try LocalPorts.free()
        self.adminPort = try LocalPorts.free()
        self.gbt32960Port = try LocalPorts.free()
        self.logPath = stateDirectory + "/horgosd-demo.log"
    }

    static var executable: URL {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("horgosd")
    }

    /// Runs `swift build --product horgosd` in the same configuration as this executable, when this
    /// executable sits in a SwiftPM build directory (`.build/<triple>/<configuration>/`).
    static func buildDaemon() throws {
        let directory = executable.deletingLastPathComponent()
        let configuration = directory.lastPathComponent
        guard configuration == "release" || configuration == "debug" else { return }
        let scratch = directory.deletingLastPathComponent().deletingLastPathComponent()
        let packageRoot = scratch.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent("Package.swift").path) else {
            return
        }
        print("building horgosd (swift build -c \(configuration) --product horgosd) ...")
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        build.arguments = ["swift", "build", "-c", configuration, "--scratch-path", scratch.path, "--product", "horgosd"]
        build.currentDirectoryURL = packageRoot
        try build.run()
        build.waitUntilExit()
        guard build.terminationStatus == 0 else {
            throw DemoError("building horgosd failed; run `swift build -c \(configuration)` and retry")
        }
    }

    func start() async throws {
        let process = Process()
        process.executableURL = Self.executable
        if !FileManager.default.isExecutableFile(atPath: Self.executable.path) {
            // `swift run horgosctl demo` builds only horgosctl: build the daemon beside it.
            try Self.buildDaemon()
        }
        guard FileManager.default.isExecutableFile(atPath: Self.executable.path) else {
            throw DemoError("horgosd is not built next to horgosctl (\(Self.executable.path)); run "
                            + "`swift build -c release` first")
        }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS_") }
        environment["HORGOS_STATE_DIRECTORY"] = stateDirectory
        environment["HORGOS_LISTEN_TELEMETRY"] = "127.0.0.1:\(telemetryPort)"
        environment["HORGOS_LISTEN_ADMIN"] = "127.0.0.1:\(adminPort)"
        environment["HORGOS_LISTEN_GBT32960"] = "127.0.0.1:\(gbt32960Port)"
        environment["HORGOS_LIMITS_MAX_CONNECTIONS_PER_ADDRESS"] = "100000"
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        process.environment = environment
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline {
            guard process.isRunning else { throw DemoError("horgosd exited at start; see \(logPath)") }
            let health = try? await AdminClient.get(
                AdminAddress(host: "127.0.0.1", port: adminPort), path: "/health", timeoutSeconds: 2)
            if health?.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DemoError("horgosd did not report healthy within 60 s; see \(logPath)")
    }

    /// SIGTERM, then wait for the drain; returns the exit status.
    func stop() async throws -> Int32 {
        guard let process else { return 0 }
        kill(process.processIdentifier, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while process.isRunning && clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
        return process.terminationStatus
    }
}

/// A failure of the demo's own steps, with what to do about it.
struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Loopback helpers: a free port.
enum LocalPorts {
    static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard result == 0 else { throw DemoError("no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// How the demo's progress line is written: redrawn in place with a carriage return on a terminal,
/// one line per update otherwise (a log or a pipe gets lines, not one line of many redraws).
struct DemoProgress {
    let terminal: Bool

    /// The bytes to write for one update.
    func render(_ line: String) -> String {
        terminal ? "\r" + line + "  " : line + "\n"
    }

    /// What ends the progress output (the newline after the last redraw on a terminal).
    var finish: String { terminal ? "\n" : "" }
}
