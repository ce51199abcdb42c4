import Foundation
import HorgosPKI
import NIOCore
import HorgosTestSupport
import Testing

@testable import HorgosServer

#if canImport(Glibc)
    import Glibc
#endif

/// The horgosd binary SwiftPM built next to this test bundle.
func horgosdExecutable() -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("horgosd").path
}


/// Starts the real `horgosd` with a temporary state directory and a fake systemd notify socket.
@Suite(.serialized) struct HorgosdProcessTests {
    /// A misspelled key stops the real daemon before anything starts: exit 78, the key and the closest
    /// valid key on stderr (issue 19).
    @Test func aMisspelledConfigurationKeyStopsTheDaemonWithExit78NamingTheClosestKey() async throws {
        let directory = try makeTemporaryDirectory()
        let configPath = directory + "/horgosd.yaml"
        try "state_directory: \(directory)/state\nstore:\n  duribility: disk\n"
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: horgosdExecutable())
        process.arguments = ["--config", configPath]
        process.environment = ["PATH": "/usr/bin:/bin"]
        let errors = Pipe()
        process.standardError = errors
        // Awaited through the termination handler: nothing blocks a thread of Swift's cooperative pool.
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        // The daemon has exited: its end of the pipe is closed, so this read ends at once.
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status == 78)
        #expect(stderr.contains("store.duribility: unknown key; the nearest valid key is store.durability"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/state/pki"), "nothing started")
    }

    @Test func daemonNotifiesReadyServesReloadsOnSIGHUPAndStopsOnSIGTERM() async throws {
        let executable = horgosdExecutable()
        try #require(FileManager.default.isExecutableFile(atPath: executable), "horgosd not built at \(executable)")
        let directory = try makeTemporaryDirectory()
        let telemetryPort = try LoopbackPort.free()
        let adminPort = try LoopbackPort.free()
        let gbt32960Port = try LoopbackPort.free()
        let configPath = directory + "/horgosd.yaml"
        try """
        state_directory: \(directory)/state
        regions: [AE, MX]
        listen:
          telemetry: 127.0.0.1:\(telemetryPort)
          admin: 127.0.0.1:\(adminPort)
          gbt32960: 127.0.0.1:\(gbt32960Port)
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let notify = try NotifyReceiver(abstract: true)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--config", configPath]
        process.environment = [
            "NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "400000", "HORGOS_LOG_LEVEL": "debug",
            "PATH": "/usr/bin:/bin",
        ]
        let log = directory + "/horgosd.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let ready = notify.receive(timeoutSeconds: 30)
        #expect(ready?.hasPrefix("READY=1\nSTATUS=serving") == true, "got \(ready ?? "nothing")")
        #expect(try await httpGet("/health", port: adminPort).status == 200)

        // The dev PKI was created in the state directory; a vehicle certificate from its CA is accepted.
        let pki = try FleetPKI(
            caCertificatePath: directory + "/state/pki/ca.crt", caPrivateKeyPath: directory + "/state/pki/ca.key")
        #expect(try fileMode(directory + "/state/pki/ca.key") == 0o600)
        let vehicle = try pki.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let client = try await TLSHarness.connect(port: telemetryPort, credential: vehicle, trusting: pki)
        #expect(try await expectClosed(client, within: .milliseconds(500)) == false)
        let status = try await httpGet("/status", port: adminPort)
        #expect(status.body.contains("\"connections\":1"))
        #expect(status.body.contains("\"telemetry\":\"127.0.0.1:\(telemetryPort)\""))
        let metrics = try await httpGet("/metrics", port: adminPort)
        #expect(metrics.body.contains("horgos_build_info{version=\"\(HorgosServerInfo.version)\"} 1"))
        #expect(metrics.body.contains("horgos_sessions_total{protocol=\"native\",role=\"vehicle\"} 1"))

        // WATCHDOG_USEC=400ms: pings every 200 ms while serving.
        var pings = 0
        while pings < 2, let message = notify.receive(timeoutSeconds: 5) {
            if message == "WATCHDOG=1" { pings += 1 }
        }
        #expect(pings == 2)

        // SIGHUP reloads the deny list between RELOADING=1 and READY=1; the open session of the revoked
        // vehicle is ended (ERROR CERTIFICATE_REVOKED), and a new connection from it is refused.
        try "vin:LSVAU2180N2183294\n".write(
            toFile: directory + "/state/pki/revoked.txt", atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        var reloadMessages: [String] = []
        while let message = notify.receive(timeoutSeconds: 10) {
            if message != "WATCHDOG=1" && !message.hasPrefix("STATUS=") { reloadMessages.append(message) }
            if message.hasPrefix("READY=1") { break }
        }
        #expect(reloadMessages.count == 2)
        #expect(reloadMessages.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true)
        #expect(try await expectClosed(client))
        let revoked = try await TLSHarness.connect(port: telemetryPort, credential: vehicle, trusting: pki)
        #expect(try await expectClosed(revoked))
        // No client certificate: refused in the handshake, logged and counted.
        if let anonymous = try? await TLSHarness.connect(port: telemetryPort, credential: nil, trusting: pki) {
            #expect(try await expectClosed(anonymous))
        }
        let refusals = try await httpGet("/metrics", port: adminPort).body
        #expect(refusals.contains("horgos_refusals_total{protocol=\"native\",code=\"CERTIFICATE_REVOKED\"} 2"))
        #expect(refusals.contains("horgos_refusals_total{protocol=\"native\",code=\"TLS_HANDSHAKE_FAILED\"} 1"))

        kill(process.processIdentifier, SIGTERM)
        var stopping: String?
        while let message = notify.receive(timeoutSeconds: 15) {
            if message.hasPrefix("STOPPING=1") {
                stopping = message
                break
            }
        }
        #expect(stopping?.hasPrefix("STOPPING=1\nSTATUS=stopping: ") == true, "got \(stopping ?? "nothing")")
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        #expect(try await expectClosed(client))
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("peer authenticated"))
        // READY=1 waited for the region writers as well as the listeners.
        let opened = try #require(output.range(of: "region writers open"))
        let readyLine = try #require(output.range(of: "horgosd: ready"))
        #expect(opened.lowerBound < readyLine.lowerBound)
        #expect(output.contains("using a DEVELOPMENT PKI"))
        #expect(output.contains("code=CERTIFICATE_REVOKED"))
        #expect(output.contains("code=TLS_HANDSHAKE_FAILED"))
    }

    @Test func badConfigurationExitsWithEXCONFIGAndNamesTheKey() async throws {
        let executable = horgosdExecutable()
        try #require(FileManager.default.isExecutableFile(atPath: executable), "horgosd not built at \(executable)")
        // Output in files, not a pipe: another test's child may inherit a pipe and hold it open.
        let result = try await runProcess(executable, [], environment: ["HORGOS_LIMITS_ACK_WINDOW": "5000"])
        #expect(result.status == 78)
        let text = String(decoding: result.stderr, as: UTF8.self)
        #expect(text == "horgosd: limits.ack_window: \"5000\" is not allowed; use an integer in 1...1024\n")
    }

    @Test func aBadRegionPolicyOrAnAuditPathInAMissingDirectoryExitsWithEXCONFIGNamingTheKey() async throws {
        let executable = horgosdExecutable()
        try #require(FileManager.default.isExecutableFile(atPath: executable), "horgosd not built at \(executable)")
        let policy = try await runProcess(
            executable, [], environment: ["HORGOS_REGIONS": "AE,RU", "HORGOS_POLICY_RU_STREAM": "nyet"])
        #expect(policy.status == 78)
        #expect(String(decoding: policy.stderr, as: UTF8.self)
            == "horgosd: policy.RU.stream: \"nyet\" is not allowed; use true or false\n")
        let state = try makeTemporaryDirectory()
        let audit = try await runProcess(
            executable, [],
            environment: [
                "HORGOS_STATE_DIRECTORY": state, "HORGOS_AUDIT_PATH": state + "/absent/audit.log",
                "HORGOS_LISTEN_TELEMETRY": "127.0.0.1:0", "HORGOS_LISTEN_ADMIN": "127.0.0.1:0",
                "HORGOS_LISTEN_GBT32960": "off", "HORGOS_REGIONS": "AE",
            ])
        #expect(audit.status == 78)
        let text = String(decoding: audit.stdout + audit.stderr, as: UTF8.self)
        #expect(text.contains("audit.path: the audit log's directory \(state)/absent does not exist"), "\(text)")
    }

    /// Every listener, of either protocol: a public address with no `tls.*` files stops the daemon before it
    /// creates a CA (the other listener stays on loopback).
    @Test(arguments: ["telemetry", "gbt32960"])
    func developmentPKIOnAPublicListenerExitsWithEXCONFIGNamingTheKeys(listener: String) async throws {
        let executable = horgosdExecutable()
        try #require(FileManager.default.isExecutableFile(atPath: executable), "horgosd not built at \(executable)")
        let state = try makeTemporaryDirectory()
        // Nothing is bound: the configuration is refused first (the ports are never opened).
        let result = try await runProcess(
            executable, [],
            environment: [
                "HORGOS_LISTEN_\(listener.uppercased())": "0.0.0.0:0", "HORGOS_STATE_DIRECTORY": state,
            ])
        #expect(result.status == 78)
        let text = String(decoding: result.stderr, as: UTF8.self)
        #expect(text.contains("tls.ca_certificate") && text.contains("tls.development"))
        #expect(text.contains("listen.\(listener) 0.0.0.0:0"))
        #expect(!FileManager.default.fileExists(atPath: state + "/pki/ca.key"))  // no CA was created
    }
}
