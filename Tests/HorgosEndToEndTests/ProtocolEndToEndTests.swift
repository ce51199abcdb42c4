import Foundation
import HorgosPKI
import HorgosSessionTraces
import HorgosWire
import NIOCore
import Synchronization
import HorgosTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Protocol 1.1 against the real daemon over TLS (issue 15): a sample of the session traces, a
/// truncated stream, the C reference client (its records come back unchanged from `horgosctl
/// export`), and the RUNBOOK's openssl recipe. Part of the serialized daemon suite.
extension DaemonEndToEndTests {
    /// Traces whose answers do not depend on the trace's clock, commit timing or operator actions.
    static let traceSample = [
        "vehicle_session_1_1_announces_horizon", "hello_minor_above_server", "hello_reserved_byte_ignored",
        "vin_not_allowed_before_sequence_gap", "invalid_vin_before_sequence_gap", "sequence_gap", "bad_checksum",
        "frame_too_large", "ping_pong", "client_bye_nothing_outstanding", "client_bye_going_to_sleep", "role_mismatch",
        "hello_required_before_payload_checks", "second_hello", "invalid_payload_bye_reason", "unknown_frame_type",
    ]

    @Test func aSampleOfTheSessionTracesGetsTheListedAnswersFromTheDaemonOverTLS() async throws {
        let daemon = try DaemonProcess()
        try await daemon.start()
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let traces = try SessionTrace.loadAll().filter { Self.traceSample.contains($0.name) }
        #expect(traces.count == Self.traceSample.count)
        for trace in traces {
            let issued =
                trace.peer.isGateway
                ? try authority.issueGatewayCertificate(name: "trace-gateway", market: trace.peer.market)
                : try authority.issueVehicleCertificate(vin: trace.peer.vin ?? "", market: trace.peer.market)
            let client = try await WireClient.connect(
                port: daemon.telemetryPort,
                context: try WireClient.context(issued: issued, caPEM: try authority.caCertificatePEM))
            var seen = 0
            for step in trace.steps {
                switch step {
                case .send(let bytes):
                    try await client.send(bytes)
                case .server(let type, var fields):
                    fields["server_time_ms"] = nil  // the daemon's clock is real
                    let frames = try await client.waitFrames(seen + 1)
                    guard frames.count > seen else {
                        Issue.record("trace \(trace.name): expected \(type), got nothing")
                        break
                    }
                    let actual = try ServerFrame.decodeAll(frames[seen])
                    seen += 1
                    let wrong = ServerFrame.mismatches(expected: (type, fields), actual: actual[0])
                    #expect(wrong.isEmpty, "trace \(trace.name) over TLS: \(wrong)")
                case .closed:
                    #expect(try await client.waitClosed(), "trace \(trace.name): still open")
                    let count = client.recorder.frames.withLock { $0.count }
                    #expect(count == seen, "trace \(trace.name): unlisted frames")
                case .commit, .shutdown, .idleTimeout, .clientEOF, .handshakeTimeout, .revoke:
                    Issue.record("trace \(trace.name) is not one the sample can run over TLS")
                }
            }
            await client.close()
        }
        #expect(try await daemon.stop() == 0)
    }

    @Test func aStreamEndingInsideAFrameIsCountedAsTruncatedNotAsAnErrorSent() async throws {
        let daemon = try DaemonProcess()
        try await daemon.start()
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let client = try await WireClient.connect(
            port: daemon.telemetryPort,
            context: try WireClient.context(
                issued: try authority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE"),
                caPEM: try authority.caCertificatePEM))
        try await client.send(WireClient.hello())
        _ = try await client.waitFrames(1)
        let frame = WireClient.telemetry(vin: VIN("LSVAU2180N2183294")!, sequence: 1, startMs: 1_700_000_000_000)
        try await client.send(Array(frame.prefix(40)))
        await client.close()  // close_notify: the stream ends 40 bytes into the frame
        var metrics = ""
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while clock.now < deadline && !metrics.contains("horgos_streams_truncated_total 1") {
            metrics = try await daemon.httpGet("/metrics").body
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(metrics.contains("horgos_streams_truncated_total 1"))
        // The ERROR counters are exported from 0 for every code: TRUNCATED_FRAME's must still read 0.
        let truncatedSent = metrics.split(separator: "\n").filter {
            $0.hasPrefix("horgos_errors_sent_total{code=\"TRUNCATED_FRAME\"}")
        }
        #expect(truncatedSent.allSatisfy { $0.hasSuffix(" 0") }, "no TRUNCATED_FRAME is counted as sent: \(truncatedSent)")
        #expect(daemon.log.contains("stream ended inside a frame, closing without ERROR"))
        #expect(client.recorder.frames.withLock { $0.count } == 1, "nothing after WELCOME reached the client")
        #expect(try await daemon.stop() == 0)
    }

    @Test func theCReferenceClientsRecordsComeBackUnchangedFromHorgosctlExport() async throws {
        let client = try await Self.buildCClient()
        let daemon = try DaemonProcess()
        try await daemon.start()
        defer { daemon.removeState() }
        let files = try Self.writeVehicleCredentials(daemon, vin: "LSVAU2180N2183294", market: "AE")
        let startMs = (Int64(Date().timeIntervalSince1970) - 600) * 1000
        let run = try await Self.runCClient(
            client, daemon: daemon, files: files, vin: "LSVAU2180N2183294", records: 57,
            startMs: startMs)
        #expect(run.status == 0, "\(run.stderr)")
        let sent = run.stdout.split(separator: "\n").map(String.init)
        #expect(sent.count == 57)
        #expect(run.stderr.contains("horizon announced: 604800 s back 86400 s ahead"), "\(run.stderr)")
        // ACK means durable in the ingest journal; the shards are written by the appliers after it.
        // A clean stop applies everything, so export reads the shards of a stopped daemon.
        #expect(try await daemon.stop() == 0)
        let iso = ISO8601DateFormatter()
        let from = iso.string(from: Date(timeIntervalSince1970: Double(startMs) / 1000 - 60))
        let to = iso.string(from: Date(timeIntervalSince1970: Double(startMs) / 1000 + 3600))
        let export = try await Self.runProgram(
            DaemonProcess.productsDirectory.appendingPathComponent("horgosctl").path,
            ["export", "--state", daemon.stateDirectory, "--region", "AE", "--from", from, "--to", to])
        #expect(export.status == 0, "\(export.stderr)")
        let exported = export.stdout.split(separator: "\n").dropFirst().map(String.init)
        #expect(exported.sorted() == sent.sorted(), "export differs from what the C client sent")
    }

    @Test func theRunbooksOpenSSLRecipeMakesVehicleAndGatewayCertificatesTheDaemonAccepts() async throws {
        let client = try await Self.buildCClient()
        let daemon = try DaemonProcess()
        try await daemon.start()
        defer { daemon.removeState() }
        let ca = daemon.stateDirectory + "/openssl-ca"
        try FileManager.default.createDirectory(atPath: ca, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: daemon.pkiDirectory + "/ca.crt", toPath: ca + "/ca.crt")
        try FileManager.default.copyItem(atPath: daemon.pkiDirectory + "/ca.key", toPath: ca + "/ca.key")
        let script = try Self.openSSLRecipe().replacingOccurrences(of: "/root/horgos-ca", with: ca)
        let recipe = try await Self.runProgram("/bin/bash", ["-euo", "pipefail", "-c", script])
        #expect(recipe.status == 0, "the RUNBOOK's openssl recipe failed: \(recipe.stderr)")
        #expect(recipe.stdout.contains("vehicle-WVWZZZ1JZXW000001.crt: OK"))
        let startMs = (Int64(Date().timeIntervalSince1970) - 600) * 1000
        let vehicle = try await Self.runCClient(
            client, daemon: daemon,
            files: (ca + "/ca.crt", ca + "/vehicle-WVWZZZ1JZXW000001.crt", ca + "/vehicle-WVWZZZ1JZXW000001.key"),
            vin: "WVWZZZ1JZXW000001", records: 3, startMs: startMs)
        #expect(vehicle.status == 0, "vehicle certificate from the recipe: \(vehicle.stderr)")
        let gateway = try await Self.runCClient(
            client, daemon: daemon, files: (ca + "/ca.crt", ca + "/gateway-depot-1.crt", ca + "/gateway-depot-1.key"),
            vin: "LGXC16DF4M0123456", records: 3, startMs: startMs, gateway: true)
        #expect(gateway.status == 0, "gateway certificate from the recipe: \(gateway.stderr)")
        #expect(try await daemon.stop() == 0)
    }

    // MARK: Helpers

    /// The shell lines of the RUNBOOK code block that holds the openssl recipe (prompts stripped,
    /// output lines dropped).
    static func openSSLRecipe() throws -> String {
        let url = DaemonProcess.repositoryRoot.appendingPathComponent("Deploy/RUNBOOK.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        let section = try #require(text.components(separatedBy: "### The same with openssl").dropFirst().first)
        let block = try #require(
            section.components(separatedBy: "```console\n").dropFirst().first?
                .components(separatedBy: "```").first)
        return block.split(separator: "\n").filter { $0.hasPrefix("# ") }.map { String($0.dropFirst(2)) }
            .joined(separator: "\n")
    }

    /// Builds Proto/c's client with make (cc and libssl-dev are CI dependencies: missing is a failure).
    static func buildCClient() async throws -> String {
        let build = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-c-\(getpid())").path
        let make = try await runProgram(
            "/usr/bin/env",
            [
                "make", "-s", "-C", DaemonProcess.repositoryRoot.appendingPathComponent("Proto/c").path, "client",
                "BUILD=\(build)",
            ])
        #expect(make.status == 0, "make -C Proto/c client (needs cc, make, libssl-dev): \(make.stderr)")
        return build + "/horgos_client"
    }

    static func writeVehicleCredentials(_ daemon: DaemonProcess, vin: String, market: String) throws
        -> (ca: String, certificate: String, key: String)
    {
        let authority = try daemon.authority()
        let issued = try authority.issueVehicleCertificate(vin: vin, market: market)
        let directory = daemon.stateDirectory + "/c-client"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try authority.caCertificatePEM.write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        try issued.certificatePEM.write(toFile: directory + "/vehicle.pem", atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: directory + "/vehicle-key.pem", atomically: true, encoding: .utf8)
        return (directory + "/ca.pem", directory + "/vehicle.pem", directory + "/vehicle-key.pem")
    }

    static func runCClient(
        _ binary: String, daemon: DaemonProcess, files: (ca: String, certificate: String, key: String), vin: String,
        records: Int, startMs: Int64, gateway: Bool = false
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runProgram(
            binary,
            [
                "127.0.0.1", String(daemon.telemetryPort), files.ca, files.certificate, files.key, vin, String(records),
                String(startMs), "localhost",
            ] + (gateway ? ["gateway"] : []))
    }

    /// Runs a program to completion without the test's HORGOS_* variables.
    static func runProgram(
        _ binary: String, _ arguments: [String]
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let output = try await runProcess(
            binary, arguments, environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HORGOS") })
        return (output.status, output.standardOutput, output.standardError)
    }
}

extension WireClient {
    /// Waits until at least `count` frames arrived or the connection closed (bounded at 30 s); returns the frames.
    func waitFrames(_ count: Int) async throws -> [[UInt8]] {
        _ = await eventually(seconds: 30, pollMilliseconds: 10) {
            recorder.frames.withLock({ $0.count }) >= count || isClosed
        }
        return recorder.frames.withLock { $0 }
    }
}
