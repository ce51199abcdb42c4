import Foundation
import HorgosPKI
import HorgosTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The real `horgosd` executable run as a child process with a temporary state directory.
///
/// Ports are chosen free by the harness; configuration goes through `HORGOS_*` variables (the same
/// path operators use). Output lines are kept for assertions and printed when a test fails.
final class DaemonProcess: @unchecked Sendable {
    let stateDirectory: String
    let telemetryPort: Int
    let adminPort: Int
    /// The GB/T 32960 listener's port (each daemon its own: the default 7325 would collide).
    let gbt32960Port: Int
    var environment: [String: String]
    /// Command-line arguments (`--config FILE` for a test that reloads a configuration file).
    var arguments: [String] = []
    private(set) var process: Process?
    private let output = LineBuffer()
    private var pipe: Pipe?

    /// Directory of the built products (horgosd, horgosctl, horgos-sim sit beside the test bundle).
    static var productsDirectory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // `swift test` runs .build/<triple>/debug/horgosPackageTests.xctest
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("horgosd").path) && url.path != "/" {
            url = url.deletingLastPathComponent()
            let debug = url.appendingPathComponent("debug")
            if FileManager.default.fileExists(atPath: debug.appendingPathComponent("horgosd").path) { return debug }
        }
        return url
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    init(stateDirectory: String? = nil, environment: [String: String] = [:]) throws {
        let state = stateDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("horgos-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        self.stateDirectory = state
        self.telemetryPort = try Self.freePort()
        self.adminPort = try Self.freePort()
        self.gbt32960Port = try Self.freePort()
        self.environment = [
            "HORGOS_STATE_DIRECTORY": state,
            "HORGOS_LISTEN_TELEMETRY": "127.0.0.1:\(telemetryPort)",
            "HORGOS_LISTEN_ADMIN": "127.0.0.1:\(adminPort)",
            "HORGOS_LISTEN_GBT32960": "127.0.0.1:\(gbt32960Port)",
            "HORGOS_LOG_LEVEL": "info",
        ].merging(environment) { $1 }
    }

    /// A daemon a test did not stop (it failed or returned early) is killed, never left running.
    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The development PKI the daemon made on its first start.
    var pkiDirectory: String { stateDirectory + "/pki" }

    func authority() throws -> FleetPKI {
        try FleetPKI(caCertificatePath: pkiDirectory + "/ca.crt", caPrivateKeyPath: pkiDirectory + "/ca.key")
    }

    /// Starts the daemon and waits until `/health` answers 200 (at most `timeout`).
    func start(timeout: Duration = .seconds(120), extraEnvironment: [String: String] = [:]) async throws {
        let process = Process()
        process.executableURL = Self.productsDirectory.appendingPathComponent("horgosd")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS_") && $0.key != "NOTIFY_SOCKET" }
        env.merge(environment) { $1 }
        env.merge(extraEnvironment) { $1 }
        // Run from the state directory so nothing lands in the repository.
        process.currentDirectoryURL = URL(fileURLWithPath: stateDirectory)
        process.environment = env
        let pipe = output.collect(from: process)
        try process.run()
        self.process = process
        self.pipe = pipe
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if !process.isRunning { throw HarnessError("horgosd exited early:\n" + log) }
            // /health answers 200 from READY on: every configured listener (GB/T 32960 too) is bound.
            if (try? await httpGet("/health").status) == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("horgosd did not become healthy (and its listeners bound) in time:\n" + log)
    }

    var pid: Int32 { process?.processIdentifier ?? 0 }

    var log: String { output.lines.withLock { $0.joined(separator: "\n") } }

    var logLines: [String] { output.lines.withLock { $0 } }

    /// Sends `signal` and waits for the process to exit; returns its exit status (or -signal).
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(60)) async throws -> Int32 {
        guard let process else { return 0 }
        kill(process.processIdentifier, signal)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            try await offThePool { process.waitUntilExit() }
            throw HarnessError("horgosd did not exit within \(timeout) after signal \(signal)")
        }
        pipe?.fileHandleForReading.readabilityHandler = nil
        self.process = nil
        return process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
    }

    /// Open file descriptors of the daemon (from /proc).
    func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// A plain HTTP/1.0 GET against the admin endpoint.
    func httpGet(_ path: String) async throws -> (status: Int, body: String) {
        try await Self.httpGet(host: "127.0.0.1", port: adminPort, path: path)
    }

    static func httpGet(host: String, port: Int, path: String) async throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw HarnessError("connect to admin port failed") }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let statusLine = parts.first?.split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// A TCP port that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw HarnessError("could not find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func removeState() {
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }
}

/// A failure of the test harness itself (not of the behaviour under test).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Output lines of a child process, appended from the pipe's reader thread.
final class LineBuffer: Sendable {
    let lines = Mutex<[String]>([])

    /// Points the process's stdout and stderr at a pipe whose lines are appended here; returns the pipe.
    func collect(from process: Process) -> Pipe {
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            let text = String(decoding: data, as: UTF8.self)
            lines.withLock { $0.append(contentsOf: text.split(separator: "\n").map(String.init)) }
        }
        return pipe
    }
}
