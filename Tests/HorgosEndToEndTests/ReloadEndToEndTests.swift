import Foundation
import Testing

/// `horgosctl reload` against the real `horgosd`: the unit's ExecReload. A reload the daemon refuses
/// (an empty deny list) makes it exit 1 with the daemon's reason; the daemon keeps running and the next
/// good reload exits 0.
@Suite(.serialized) struct ReloadEndToEndTests {
    func horgosctl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = DaemonProcess.productsDirectory.appendingPathComponent("horgosctl")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS_") }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func horgosctlReloadFailsWhenTheDaemonRefusesTheReloadAndSucceedsOnceFixed() async throws {
        let listPath = FileManager.default.temporaryDirectory.appendingPathComponent("deny-\(UUID().uuidString).txt").path
        try "vin:LSVAU2180N2183294\n".write(toFile: listPath, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(environment: ["HORGOS_TLS_REVOCATION_LIST": listPath])
        try await daemon.start()
        defer { Task { _ = try? await daemon.stop() } }
        let admin = ["--admin", "http://127.0.0.1:\(daemon.adminPort)", "--pid", String(daemon.pid)]

        try "".write(toFile: listPath, atomically: true, encoding: .utf8)  // a failed copy
        let refused = try horgosctl(["reload"] + admin)
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("tls.revocation_list"))
        #expect(try await daemon.httpGet("/health").status == 200)  // still serving
        #expect(daemon.log.contains("reload failed"))

        try "# nothing revoked\n".write(toFile: listPath, atomically: true, encoding: .utf8)
        let fixed = try horgosctl(["reload"] + admin)
        #expect(fixed.status == 0, "\(fixed.output)")
        #expect(fixed.output.contains("reloaded (generation 2"))
        let metrics = try await daemon.httpGet("/metrics").body
        #expect(metrics.contains("horgos_reload_failures_total 1"))
    }
}
