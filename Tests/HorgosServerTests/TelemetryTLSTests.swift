import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import X509

@testable import HorgosServer

/// What the listener under test reported.
enum ListenerEvent: Sendable {
    case bound(Int)
    case session(PeerIdentity)
    case refused(PeerRefusal)
}

/// Runs a real TelemetryListener on 127.0.0.1:0 with the test CA, and a real NIO-SSL client against it.
final class TLSHarness: Sendable {
    let events: AsyncStream<ListenerEvent>
    private let continuation: AsyncStream<ListenerEvent>.Continuation
    let listener: TelemetryListener
    let revocations: RevocationListHolder
    let revocationPath: String

    init(regions: Set<String> = ["AE", "MX"], handshakeTimeoutSeconds: Int = 10) throws {
        (events, continuation) = AsyncStream.makeStream(of: ListenerEvent.self)
        let server = try testAuthority.issueServerCertificate()
        let context = try TelemetryTLS.makeServerContext(
            caCertificatePEM: try testAuthority.caCertificatePEM,
            certificateChainPEM: try server.certificatePEM,
            privateKeyPEM: server.privateKeyPEM)
        revocationPath = try makeTemporaryDirectory() + "/revoked.txt"
        revocations = try RevocationListHolder(path: revocationPath, required: false)
        var limits = HorgosConfiguration.Limits()
        limits.handshakeTimeoutSeconds = handshakeTimeoutSeconds
        let continuation = self.continuation
        listener = TelemetryListener(
            socket: .address(ListenAddress(host: "127.0.0.1", port: 0)),
            tlsContext: context,
            policy: PeerAdmissionPolicy(regions: regions, revocations: revocations),
            limits: limits,
            logger: Logger(label: "test"),
            onBound: { continuation.yield(.bound($0.port ?? -1)) },
            onSession: { identity, _ in continuation.yield(.session(identity)) },
            onRefusal: { reason, _ in continuation.yield(.refused(reason)) })
    }

    /// Starts the listener, returns its port and the task to cancel.
    func start() async throws -> (port: Int, task: Task<Void, any Error>) {
        let listener = self.listener
        let task = Task { try await listener.run() }
        guard case .bound(let port) = try await nextEvent() else { throw HarnessError.unexpectedEvent }
        return (port, task)
    }

    func nextEvent(timeout: Duration = .seconds(10)) async throws -> ListenerEvent {
        let events = self.events
        return try await withThrowingTaskGroup(of: ListenerEvent?.self) { group in
            group.addTask {
                for await event in events { return event }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let event = try await group.next() ?? nil else { throw HarnessError.timedOut }
            return event
        }
    }

    enum HarnessError: Error { case timedOut, unexpectedEvent }

    /// Connects a TLS client that trusts the test CA and presents `credential` (or no certificate).
    static func connect(
        port: Int, credential: IssuedCertificate?, maximumTLSVersion: TLSVersion? = nil,
        trusting authority: FleetPKI = testAuthority
    ) async throws -> any Channel {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([
            try NIOSSLCertificate(bytes: Array(try authority.caCertificatePEM.utf8), format: .pem)
        ])
        tls.certificateVerification = .fullVerification
        if let maximumTLSVersion {
            tls.minimumTLSVersion = .tlsv1
            tls.maximumTLSVersion = maximumTLSVersion
        }
        if let credential {
            tls.certificateChain = [
                .certificate(try NIOSSLCertificate(bytes: Array(try credential.certificatePEM.utf8), format: .pem))
            ]
            tls.privateKey = .privateKey(
                try NIOSSLPrivateKey(bytes: Array(credential.privateKeyPEM.utf8), format: .pem))
        }
        let context = try NIOSSLContext(configuration: tls)
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }
}

/// Waits until the channel is closed (by the peer); false if it is still open after `timeout`.
/// Polls, because awaiting `closeFuture` cannot be cancelled.
func expectClosed(_ channel: any Channel, within timeout: Duration = .seconds(10)) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if !channel.isActive { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return !channel.isActive
}

@Suite(.serialized) struct TelemetryTLSTests {
    @Test func vehicleCertificateIsAcceptedAndItsIdentityRead() async throws {
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let client = try await TLSHarness.connect(port: port, credential: vehicle)
        guard case .session(let identity) = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(identity.role == .vehicle)
        #expect(identity.vin == "LSVAU2180N2183294")
        #expect(identity.market == "AE")
        #expect(harness.listener.connectionCount == 1)
        // Held open: the session layer is not attached yet, so the server does not close it.
        #expect(try await expectClosed(client, within: .milliseconds(300)) == false)
        try await client.close()
    }

    @Test func gatewayCertificateIsAcceptedAsGateway() async throws {
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let gateway = try testAuthority.issueGatewayCertificate(name: "mx-partner-1", market: "MX")
        let client = try await TLSHarness.connect(port: port, credential: gateway)
        guard case .session(let identity) = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(identity.role == .gateway && identity.name == "mx-partner-1" && identity.market == "MX")
        try await client.close()
    }

    /// Every refusal case: the server reports the reason and the client's connection is closed.
    private func expectRefused(
        _ credential: IssuedCertificate?, reason: PeerRefusal, maximumTLSVersion: TLSVersion? = nil,
        prepare: (TLSHarness) throws -> Void = { _ in }
    ) async throws {
        let harness = try TLSHarness()
        try prepare(harness)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let client: (any Channel)?
        do {
            client = try await TLSHarness.connect(
                port: port, credential: credential, maximumTLSVersion: maximumTLSVersion)
        } catch {
            client = nil  // refused so early that the connect itself failed: also fine
        }
        let event = try await harness.nextEvent()
        guard case .refused(let actual) = event else {
            Issue.record("expected a refusal, got \(event)")
            return
        }
        #expect(actual == reason)
        if let client { #expect(try await expectClosed(client)) }
    }

    @Test func clientWithoutCertificateFailsTheHandshake() async throws {
        try await expectRefused(nil, reason: .handshakeFailed)
    }

    @Test func certificateFromAnotherCAFailsTheHandshake() async throws {
        let stranger = try FleetPKI.createCertificateAuthority(commonName: "Some Other CA")
        let foreign = try stranger.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        try await expectRefused(foreign, reason: .handshakeFailed)
    }

    @Test func expiredCertificateFailsTheHandshake() async throws {
        let past = Date().addingTimeInterval(-30 * 86400)
        let expired = try testAuthority.issueVehicleCertificate(
            vin: "LSVAU2180N2183294", market: "AE",
            validity: CertificateValidity(notValidBefore: past, notValidAfter: past.addingTimeInterval(86400)))
        try await expectRefused(expired, reason: .handshakeFailed)
    }

    @Test func tls11ClientFailsTheHandshake() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        try await expectRefused(vehicle, reason: .handshakeFailed, maximumTLSVersion: .tlsv11)
    }

    @Test func revokedSerialIsRefusedAfterTheHandshake() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let serial = PeerIdentity.hex(vehicle.certificate.serialNumber.bytes)
        try await expectRefused(vehicle, reason: .revoked) { harness in
            try "serial:\(serial)\n".write(toFile: harness.revocationPath, atomically: true, encoding: .utf8)
            try harness.revocations.reload()
        }
    }

    @Test func marketOutsideTheConfiguredRegionsIsRefused() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "BR")
        try await expectRefused(vehicle, reason: .unknownMarket)
    }

    @Test func stalledHandshakeIsClosedByTheTimeout() async throws {
        let harness = try TLSHarness(handshakeTimeoutSeconds: 1)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        // A plain TCP connection that never speaks TLS.
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        guard case .refused(let reason) = try await harness.nextEvent(timeout: .seconds(5)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(reason == .handshakeTimeout)
        #expect(try await expectClosed(client))
    }

    @Test func serverPolicyIsTLS12MinimumWithRequiredClientCertificate() throws {
        let server = try testAuthority.issueServerCertificate()
        let configuration = TelemetryTLS.serverConfiguration(
            trustRoots: [try NIOSSLCertificate(bytes: Array(try testAuthority.caCertificatePEM.utf8), format: .pem)],
            certificateChain: [try NIOSSLCertificate(bytes: Array(try server.certificatePEM.utf8), format: .pem)],
            privateKey: try NIOSSLPrivateKey(bytes: Array(server.privateKeyPEM.utf8), format: .pem))
        #expect(configuration.minimumTLSVersion == .tlsv12)
        #expect(configuration.certificateVerification == .noHostnameVerification)
    }
}
