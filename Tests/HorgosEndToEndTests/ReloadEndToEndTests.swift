import Foundation
import HorgosGBT32960
import HorgosPKI
import HorgosWire
import HorgosTestSupport
import Testing

/// `horgosctl reload` against the real `horgosd`: the unit's ExecReload. A reload the daemon refuses
/// (an empty deny list) makes it exit 1 with the daemon's reason; the daemon keeps running and the next
/// good reload exits 0.
@Suite(.serialized) struct ReloadEndToEndTests {
    /// Runs horgosctl with its output in a file (a pipe's write end may be inherited by another test's
    /// child process, and reading to end-of-file would wait for that one).
    func horgosctl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("ctl-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = DaemonProcess.productsDirectory.appendingPathComponent("horgosctl")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS_") }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        try await offThePool { process.waitUntilExit() }
        return (process.terminationStatus, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    @Test func horgosctlReloadFailsWhenTheDaemonRefusesTheReloadAndSucceedsOnceFixed() async throws {
        let listPath = FileManager.default.temporaryDirectory.appendingPathComponent("deny-\(UUID().uuidString).txt").path
        try "vin:LSVAU2180N2183294\n".write(toFile: listPath, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(environment: ["HORGOS_TLS_REVOCATION_LIST": listPath])
        try await daemon.start()
        defer { Task { _ = try? await daemon.stop() } }
        let admin = ["--admin", "http://127.0.0.1:\(daemon.adminPort)", "--pid", String(daemon.pid)]

        try "".write(toFile: listPath, atomically: true, encoding: .utf8)  // a failed copy
        let refused = try await horgosctl(["reload"] + admin)
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("tls.revocation_list"))
        #expect(try await daemon.httpGet("/health").status == 200)  // still serving
        #expect(daemon.log.contains("reload failed"))

        try "# nothing revoked\n".write(toFile: listPath, atomically: true, encoding: .utf8)
        let fixed = try await horgosctl(["reload"] + admin)
        #expect(fixed.status == 0, "\(fixed.output)")
        #expect(fixed.output.contains("reloaded (generation 2"))
        let metrics = try await daemon.httpGet("/metrics").body
        #expect(metrics.contains("horgos_reload_failures_total 1"))
    }

    /// A reload of `limits.*` reaches the GB/T 32960 listener's open sessions too: a unit logged in under a
    /// 600 s idle timeout is closed once the reloaded 2 s one has passed since its last frame.
    @Test func aReloadedIdleTimeoutClosesAnOpenGBT32960Session() async throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: config) }
        try "limits:\n  heartbeat_interval_seconds: 1\n  idle_timeout_seconds: 600\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess()
        daemon.arguments = ["--config", config]
        defer { daemon.removeState() }
        try await daemon.start()
        let authority = try daemon.authority()
        let context = try WireClient.context(
            issued: try authority.issueVehicleCertificate(vin: GBT32960EndToEndTests.vin.description, market: "AE"),
            caPEM: try authority.caCertificatePEM)
        let unit = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: context)
        _ = try #require(try await unit.request(GBT32960EndToEndTests.login(sequence: 1)))
        try await Task.sleep(for: .seconds(3))
        #expect(!unit.isClosed, "open under the configured 600 s idle timeout")

        try "limits:\n  heartbeat_interval_seconds: 1\n  idle_timeout_seconds: 2\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let admin = ["--admin", "http://127.0.0.1:\(daemon.adminPort)", "--pid", String(daemon.pid)]
        let reload = try await horgosctl(["reload"] + admin)
        #expect(reload.status == 0, "\(reload.output)")
        for _ in 0..<200 where !unit.isClosed { try await Task.sleep(for: .milliseconds(50)) }
        #expect(unit.isClosed, "the reloaded idle timeout reached the open session")
        #expect(try await daemon.stop() == 0)
    }
}
