import Foundation
import HorgosConfig
import HorgosPKI
import HorgosWire
import NIOCore
import Synchronization
import Testing
import SwiftASN1
import X509
import Crypto

@testable import HorgosServer

/// A client certificate and key as PEM (what `s_client -cert -key` reads).
struct ClientCredential: Sendable {
    var certificatePEM: String
    var privateKeyPEM: String

    init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    init(_ issued: IssuedCertificate) throws {
        self.init(certificatePEM: try issued.certificatePEM, privateKeyPEM: issued.privateKeyPEM)
    }
}

/// `openssl s_client` as a vehicle or gateway: the independent peer of the TLS policy matrix.
///
/// Runs with `-quiet -nocommands`, so its stdin goes to the server as is (frames) and what the server
/// sends arrives on its stdout (frames); it stays connected until the server closes or it is stopped.
final class SClient: Sendable {
    private let process: Process
    private let input: Pipe
    /// A value behind a lock, shareable with the pipes' reader closures.
    final class Locked<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        func withLock<R>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
    }

    private let received = Locked<[UInt8]>([])
    let stderr = Locked<String>("")

    init(port: Int, credential: ClientCredential?, options: [String] = []) throws {
        let directory = try makeTemporaryDirectory()
        var arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-quiet", "-nocommands", "-CAfile", directory + "/ca.crt",
        ]
        try (try testAuthority.caCertificatePEM).write(toFile: directory + "/ca.crt", atomically: true, encoding: .utf8)
        if let credential {
            try credential.certificatePEM.write(toFile: directory + "/client.crt", atomically: true, encoding: .utf8)
            try credential.privateKeyPEM.write(toFile: directory + "/client.key", atomically: true, encoding: .utf8)
            arguments += ["-cert", directory + "/client.crt", "-key", directory + "/client.key"]
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: try OpenSSLTool.path())
        process.arguments = arguments + options
        input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        let received = self.received
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { received.withLock { $0 += Array(data) } }
        }
        let stderr = self.stderr
        errors.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { stderr.withLock { $0 += String(decoding: data, as: UTF8.self) } }
        }
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    /// Sends bytes to the server.
    func send(_ bytes: [UInt8]) {
        input.fileHandleForWriting.write(Data(bytes))
    }

    func sendHello(_ kind: Hello.ClientKind) {
        var hello: [UInt8] = []
        FrameEncoder.appendHello(Hello(clientKind: kind, clientTimeMs: 0, softwareVersion: "s_client"), to: &hello)
        send(hello)
    }

    /// True once the process ended (the server closed the connection or the handshake failed).
    func exited(within timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return !process.isRunning
    }

    func stop() {
        if process.isRunning { process.terminate() }
    }

    /// The frames the server sent so far (complete ones).
    func frames() -> [Message] {
        let bytes = received.withLock { $0 }
        var out: [Message] = []
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                guard let frame = try? FrameDecoder().decode(UnsafeRawBufferPointer(rebasing: raw[offset...])),
                    let message = try? frame.message()
                else { return }
                out.append(message)
                offset += frame.header.frameLength
            }
        }
        return out
    }

    /// Waits until a frame `matching` arrived.
    func waitFor(within timeout: Duration = .seconds(10), _ matching: (Message) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if frames().contains(where: matching) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return frames().contains(where: matching)
    }

    /// The code of the ERROR frame the server sent, if any.
    var errorCode: ErrorCode? {
        for case .error(let error) in frames() { return error.knownCode }
        return nil
    }

    var gotWelcome: Bool {
        frames().contains { if case .welcome = $0 { true } else { false } }
    }
}

/// The policy matrix of issue 13: each client `openssl s_client` can be made into gets the documented
/// outcome (RUNBOOK "TLS policy"): a TLS-level refusal (handshake fails, no session), or ERROR with a
/// code right after the handshake.
@Suite(.serialized) struct TLSPolicyMatrixTests {
    static let vin = "LSVAU2180N2183294"

    /// A refusal by TLS: the server reports a failed handshake, the client ends without WELCOME.
    func expectHandshakeRefused(
        _ credential: ClientCredential?, options: [String] = [], harness: TLSHarness? = nil
    ) async throws {
        let harness = try harness ?? TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let client = try SClient(port: port, credential: credential, options: options)
        defer { client.stop() }
        client.sendHello(.vehicle)
        let event = try await harness.nextEvent()
        guard case .handshakeFailed = event else {
            Issue.record("expected a failed handshake, got \(event); s_client: \(client.stderr.withLock { $0 })")
            return
        }
        #expect(try await client.exited())
        #expect(!client.gotWelcome)
    }

    /// A refusal after the handshake: ERROR `code` on the wire, then the server closes.
    func expectErrorFrame(
        _ credential: ClientCredential, code: ErrorCode, harness: TLSHarness? = nil
    ) async throws {
        let harness = try harness ?? TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let client = try SClient(port: port, credential: credential)
        defer { client.stop() }
        let event = try await harness.nextEvent()
        guard case .refused(let actual) = event else {
            Issue.record("expected a refusal, got \(event); s_client: \(client.stderr.withLock { $0 })")
            return
        }
        #expect(actual == code)
        #expect(try await client.waitFor { if case .error = $0 { true } else { false } })
        #expect(client.errorCode == code)
        #expect(try await client.exited())
    }

    func vehicle(_ vin: String = TLSPolicyMatrixTests.vin) throws -> ClientCredential {
        try ClientCredential(testAuthority.issueVehicleCertificate(vin: vin, market: "AE"))
    }

    @Test func tls13AndTls12WithECDHEAndAEADAreAccepted() async throws {
        for options in [["-tls1_3"], ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
                        ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"]] {
            let harness = try TLSHarness()
            let (port, task) = try await harness.start()
            defer { task.cancel() }
            let client = try SClient(port: port, credential: try vehicle(), options: options)
            defer { client.stop() }
            client.sendHello(.vehicle)
            guard case .session = try await harness.nextEvent() else {
                Issue.record("\(options): expected a session; s_client: \(client.stderr.withLock { $0 })")
                continue
            }
            #expect(try await client.waitFor { if case .welcome = $0 { true } else { false } }, "\(options)")
        }
    }

    @Test func tls10IsRefused() async throws {
        try await expectHandshakeRefused(try vehicle(), options: ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"])
    }

    @Test func tls11IsRefused() async throws {
        try await expectHandshakeRefused(try vehicle(), options: ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    }

    @Test(arguments: ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"])
    func tls12CBCSuiteIsRefused(suite: String) async throws {
        try await expectHandshakeRefused(try vehicle(), options: ["-tls1_2", "-cipher", suite])
    }

    @Test func clientWithoutCertificateIsRefused() async throws {
        try await expectHandshakeRefused(nil)
    }

    @Test func certificateOfAnotherCAIsRefused() async throws {
        let stranger = try FleetPKI.createCertificateAuthority(commonName: "Some Other CA")
        try await expectHandshakeRefused(
            try ClientCredential(stranger.issueVehicleCertificate(vin: Self.vin, market: "AE")))
    }

    @Test func expiredCertificateIsRefused() async throws {
        let past = Date().addingTimeInterval(-30 * 86400)
        try await expectHandshakeRefused(
            try ClientCredential(
                testAuthority.issueVehicleCertificate(
                    vin: Self.vin, market: "AE",
                    validity: CertificateValidity(notValidBefore: past, notValidAfter: past.addingTimeInterval(86400)))))
    }

    /// A leaf whose EKU is serverAuth only: BoringSSL's client-purpose check fails the handshake.
    @Test func serverAuthOnlyCertificateIsRefused() async throws {
        try await expectHandshakeRefused(try Self.leaf(cn: Self.vin, usage: [.serverAuth]))
    }

    /// A leaf with no EKU at all passes BoringSSL; the identity rule refuses it with IDENTITY_INVALID.
    @Test func certificateWithoutExtendedKeyUsageGetsIdentityInvalid() async throws {
        try await expectErrorFrame(try Self.leaf(cn: Self.vin, usage: nil), code: .identityInvalid)
    }

    @Test func sanAndCommonNameDisagreeingGetsIdentityInvalid() async throws {
        try await expectErrorFrame(
            try Self.leaf(cn: "LSVAU2180N2183295", sans: [.uniformResourceIdentifier("urn:vin:\(Self.vin)")]),
            code: .identityInvalid)
    }

    @Test func certificateRevokedInAnOpensslCaCRLIsRefusedAtTheHandshake() async throws {
        let ca = try OpenSSLCA()
        let revoked = try vehicle()
        try await ca.revoke(revoked)
        let harness = try TLSHarness(crlPaths: [try await ca.generateCRL()])
        try await expectErrorFrame(revoked, code: .certificateRevoked, harness: harness)
    }

    /// Revoked while streaming: the reload ends the open session with ERROR CERTIFICATE_REVOKED.
    @Test(arguments: [Hello.ClientKind.vehicle, .gateway])
    func certificateRevokedWhileConnectedEndsTheSession(kind: Hello.ClientKind) async throws {
        let ca = try OpenSSLCA()
        let crl = try await ca.generateCRL()
        let harness = try TLSHarness(crlPaths: [crl])
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let credential =
            kind == .vehicle
            ? try vehicle()
            : try ClientCredential(testAuthority.issueGatewayCertificate(name: "ae-yard-1", market: "AE"))
        let client = try SClient(port: port, credential: credential)
        defer { client.stop() }
        client.sendHello(kind)
        guard case .session = try await harness.nextEvent() else {
            Issue.record("expected a session; s_client: \(client.stderr.withLock { $0 })")
            return
        }
        #expect(try await client.waitFor { if case .welcome = $0 { true } else { false } })
        try await ca.revoke(credential)
        _ = try await ca.generateCRL()
        let verdict = await harness.reloader.reload()
        #expect(verdict.succeeded)
        #expect(verdict.revokedSessions == 1)  // the ERROR is written when reload returns
        #expect(try await client.waitFor { if case .error = $0 { true } else { false } })
        #expect(client.errorCode == .certificateRevoked)
        #expect(try await client.exited())
    }

    /// A VIN revoked while a gateway streams: its frames for that VIN are acknowledged as rejected (not
    /// stored), frames for other VINs still go to storage.
    @Test func vinRevokedWhileAGatewayStreamsRefusesThatVINsFrames() async throws {
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let gateway = try ClientCredential(testAuthority.issueGatewayCertificate(name: "ae-yard-1", market: "AE"))
        let client = try SClient(port: port, credential: gateway)
        defer { client.stop() }
        client.sendHello(.gateway)
        guard case .session = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(try await client.waitFor { if case .welcome = $0 { true } else { false } })
        try "vin:\(Self.vin)\n".write(toFile: harness.revocationPath, atomically: true, encoding: .utf8)
        #expect(await harness.reloader.reload().revokedSessions == 0)  // the gateway itself is not revoked
        var frame: [UInt8] = []
        let records = (0..<3).map { TelemetryRecord(timeOffsetMs: UInt32($0) * 1000, soc: 50) }
        FrameEncoder.appendTelemetry(
            vin: VIN(Self.vin)!, baseTimeMs: 1_700_000_000_000, records: records, sequence: 1, to: &frame)
        client.send(frame)
        #expect(try await client.waitFor { if case .ack(let ack) = $0 { ack.sequence == 1 } else { false } })
        for case .ack(let ack) in client.frames() { #expect(ack.rejectedRecords == 3) }
        #expect(client.errorCode == nil)
    }

    /// A garbage CRL on reload: the reload fails, the previous CRL keeps revoking, others still get in.
    @Test func garbageCRLOnReloadFailsAndThePreviousStateKeepsWorking() async throws {
        let ca = try OpenSSLCA()
        let revoked = try vehicle()
        try await ca.revoke(revoked)
        let crl = try await ca.generateCRL()
        let harness = try TLSHarness(crlPaths: [crl])
        try "-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n".write(
            toFile: crl, atomically: true, encoding: .utf8)
        let verdict = await harness.reloader.reload()
        #expect(!verdict.succeeded)
        #expect(verdict.error?.contains("tls.crl") == true)
        try await expectErrorFrame(revoked, code: .certificateRevoked, harness: harness)
        try await expectAdmitted(try vehicle("LSVAU2180N2183295"),
                                 harness: try TLSHarness(crlPaths: [try await ca.generateCRL(name: "fresh.crl")]))
    }

    /// An empty or truncated deny list on reload: the reload fails, the previous list stays in force.
    @Test(arguments: ["", "serial:0a1b\nvin:LSVAU21"])
    func emptyOrTruncatedDenyListOnReloadFails(content: String) async throws {
        let harness = try TLSHarness()
        try "vin:\(Self.vin)\n".write(toFile: harness.revocationPath, atomically: true, encoding: .utf8)
        #expect(await harness.reloader.reload().succeeded)
        try content.write(toFile: harness.revocationPath, atomically: true, encoding: .utf8)
        let verdict = await harness.reloader.reload()
        #expect(!verdict.succeeded)
        #expect(verdict.error?.contains("tls.revocation_list") == true)
        try await expectErrorFrame(try vehicle(), code: .certificateRevoked, harness: harness)
    }

    func expectAdmitted(_ credential: ClientCredential, harness: TLSHarness) async throws {
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let client = try SClient(port: port, credential: credential)
        defer { client.stop() }
        client.sendHello(.vehicle)
        guard case .session = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(try await client.waitFor { if case .welcome = $0 { true } else { false } })
    }

    /// A leaf signed by the test CA with the given CN, SANs and EKU.
    static func leaf(
        cn: String, sans: [GeneralName] = [], usage: [ExtendedKeyUsage.Usage]? = [.clientAuth]
    ) throws -> ClientCredential {
        let key = P256.Signing.PrivateKey()
        let certificate = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AE"); OrganizationalUnitName("vehicle"); CommonName(cn)
            }, sans: sans, usage: usage, key: key)
        return ClientCredential(
            certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }
}
