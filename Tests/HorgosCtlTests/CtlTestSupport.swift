import Foundation
import HorgosStore
import HorgosTestSupport
import HorgosWire
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `horgosctl` executable built next to the test bundle (`swift build --build-tests` builds it);
/// `HORGOSCTL` overrides the search.
func horgosctlPath() -> String? {
    if let path = ProcessInfo.processInfo.environment["HORGOSCTL"] { return path }
    var candidates: [String] = []
    for start in [CommandLine.arguments.first ?? "", Bundle.main.bundlePath, Bundle.main.executablePath ?? ""] {
        var url = URL(fileURLWithPath: start)
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            candidates.append(url.appendingPathComponent("horgosctl").path)
        }
    }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// 2026-11-29T12:00:00Z: "now" for the store writer and for horgosctl (HORGOSCTL_NOW).
/// True in CI (`CI=true`): a test that needs a host tool fails there instead of being skipped.
let ciRequiresHostTools = ProcessInfo.processInfo.environment["CI"] == "true"

let noon: Int64 = UTCDay(year: 2026, month: 11, day: 29).startMs + 12 * 3_600_000
let noonText = "2026-11-29T12:00:00Z"

/// What one run of horgosctl produced.
struct CtlRun {
    var status: Int32
    var stdout: String
    var stderr: String

    /// stdout parsed as JSON (a failed test when it is not).
    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(object as? [String: Any], "stdout is not a JSON object: \(stdout.prefix(300))")
    }
}

/// A temporary directory with a state directory and a configuration file naming it, removed at deinit.
final class CtlFixture: Sendable {
    let root: String
    var state: String { root + "/state" }
    var config: String { root + "/horgosd.yaml" }

    init(regions: [String] = ["AE", "BR", "MX"], extraConfig: String = "", name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        root = NSTemporaryDirectory() + "horgosctl-\(safe)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root + "/state", withIntermediateDirectories: true)
        let yaml = """
            state_directory: \(root)/state
            regions: [\(regions.joined(separator: ", "))]
            listen:
              admin: 127.0.0.1:\(closedPort())
            \(extraConfig)
            """
        try yaml.write(toFile: root + "/horgosd.yaml", atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Runs horgosctl with `--config` of this fixture (appended unless `withConfig` is false), HORGOS_*
    /// variables removed, `HORGOSCTL_NOW` at noon and colour off.
    func run(
        _ arguments: [String], withConfig: Bool = true, environment: [String: String] = [:]
    ) async throws -> CtlRun {
        try await runHorgosctl(arguments + (withConfig ? ["--config", config] : []), environment: environment)
    }
}

/// Runs the built horgosctl, output captured through files (no pipe can fill up and block it).
func runHorgosctl(_ arguments: [String], environment: [String: String] = [:]) async throws -> CtlRun {
    let binary = try #require(horgosctlPath(), "horgosctl must be built next to the tests (swift build --build-tests)")
    return try await runProgram(binary, arguments, environment: environment)
}

/// Runs `binary` with HORGOS_* variables removed, `HORGOSCTL_NOW` at noon and `NO_COLOR` set (unless
/// `environment` says otherwise).
func runProgram(
    _ binary: String, _ arguments: [String], environment: [String: String] = [:]
) async throws -> CtlRun {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS") }
    env["HORGOSCTL_NOW"] = noonText
    env["NO_COLOR"] = "1"
    for (key, value) in environment { env[key] = value }
    let output = try await runProcess(binary, arguments, environment: env)
    return CtlRun(status: output.status, stdout: output.standardOutput, stderr: output.standardError)
}

/// A TCP port on 127.0.0.1 that nothing listens on: bound by the kernel's choice, then closed.
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A VIN with a number in it: `LSVCTL` + 11 digits.
func testVIN(_ index: Int) -> VIN {
    let digits = String(index)
    return VIN("LSVCTL" + String(repeating: "0", count: 11 - digits.count) + digits)!
}

/// `count` records one minute apart starting `startMs`, with simple distinct values.
func minuteRecords(
    _ count: Int, soc: UInt8 = 50, maxCellTemp: Int8 = 30, alarmLevel: UInt8 = 0, alarmFlags: UInt32 = 0
) -> [TelemetryRecord] {
    (0..<count).map { index in
        TelemetryRecord(
            timeOffsetMs: UInt32(index * 60_000), latitudeE7: 251_000_000 + Int32(index), longitudeE7: 552_000_000,
            odometerHm: 10_000 + UInt32(index), speedDkmh: 400, headingCdeg: 9000, packVoltageDv: 3800,
            packCurrentDa: 120, soc: soc, maxCellTemp: maxCellTemp, minCellTemp: 20, maxAlarmLevel: alarmLevel,
            status: 0x9, alarmFlags: alarmFlags)
    }
}

/// A value behind a mutex that escaping closures can share.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }
}

/// Writes telemetry through the real store writer (ShardStore / RegionWriter) with a clock the test sets.
final class FleetWriter: Sendable {
    private let clock: Locked<Int64>
    let store: ShardStore

    init(stateDirectory: String, regions: [String], nowMs: Int64) throws {
        let clock = Locked(nowMs)
        self.clock = clock
        store = try ShardStore(
            configuration: StoreConfiguration(
                stateDirectory: stateDirectory, regions: regions.compactMap(Region.init), durability: .process,
                applyIntervalMs: 1, retentionDays: 3650, clock: { clock.value }, log: { _, _ in },
                createdBy: "horgosctl-tests"))
    }

    /// Moves the writer's clock (records are accepted within 7 days before it).
    func setNow(_ ms: Int64) { clock.value = ms }

    /// Stores one TELEMETRY frame's payload, built by FrameEncoder, and waits for its commit.
    @discardableResult
    func store(
        _ region: String, _ vin: VIN, baseTimeMs: Int64, _ records: [TelemetryRecord]
    ) async throws -> CommitOutcome {
        var frame: [UInt8] = []
        FrameEncoder.appendTelemetry(vin: vin, baseTimeMs: baseTimeMs, records: records, sequence: 1, to: &frame)
        let payload = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
        _ = try payload.withUnsafeBytes { try TelemetryBatchView(payload: $0) }
        let outcome = Locked<CommitOutcome?>(nil)
        try store.writer(for: Region(region)!).submitTelemetry(payload) { result in outcome.value = result }
        #expect(await eventually { outcome.value != nil }, "commit of \(vin) in \(region) timed out")
        return try #require(outcome.value)
    }

    /// Stops the writers: commit, checkpoint, close.
    func stop() { store.stop() }
}
