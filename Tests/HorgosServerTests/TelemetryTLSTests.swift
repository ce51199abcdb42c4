import Foundation
import HorgosPKI
import HorgosStore
import HorgosWire
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
    case session(SessionPeer)
    case refused(ErrorCode)
    case handshakeFailed
}

/// Reports session starts and refusals as listener events.
struct EventObserver: ConnectionObserver {
    let continuation: AsyncStream<ListenerEvent>.Continuation
    func sessionStarted(protocolName: String, role: String, identity: PeerIdentity?) {
        if let identity { continuation.yield(.session(identity.sessionPeer)) }
    }
    func refused(protocolName: String, code: String) {
        if let code = ErrorCode(name: code) { continuation.yield(.refused(code)) }
    }
    func handshakeFailed(protocolName: String) { continuation.yield(.handshakeFailed) }
}

/// Runs the real native listener (TLS, decoder, sessions) on 127.0.0.1:0 with the test CA, admitting
/// peers through PeerAdmissionPolicy, and a real NIO-SSL client against it.
final class TLSHarness: Sendable {
    let events: AsyncStream<ListenerEvent>
    private let continuation: AsyncStream<ListenerEvent>.Continuation
    let listener: Listener<NativeProtocol>
    let service: ListenerService<NativeProtocol>
    let revocations: RevocationListHolder
    let revocationPath: String
    /// The fleet CA as a file (what CRLs are checked against).
    let caPath: String
    /// Reloads the deny list and the CRLs as SIGHUP does, ending revoked sessions.
    let reloader: TrustReloader

    init(
        regions: Set<String> = ["AE", "MX"], handshakeTimeoutSeconds: Int64 = 10, crlPaths: [String] = [],
        idleTimeoutSeconds: Int64 = 90
    ) throws {
        (events, continuation) = AsyncStream.makeStream(of: ListenerEvent.self)
        let server = try testAuthority.issueServerCertificate()
        let context = try TelemetryTLS.makeServerContext(
            caCertificatePEM: try testAuthority.caCertificatePEM,
            certificateChainPEM: try server.certificatePEM,
            privateKeyPEM: server.privateKeyPEM)
        let directory = try makeTemporaryDirectory()
        revocationPath = directory + "/revoked.txt"
        caPath = directory + "/ca.crt"
        try (try testAuthority.caCertificatePEM).write(toFile: caPath, atomically: true, encoding: .utf8)
        let sources = RevocationSources(
            denyListPath: revocationPath, denyListRequired: false, crlPaths: crlPaths, caCertificatePath: caPath)
        revocations = try RevocationListHolder(sources: sources)
        let policy = PeerAdmissionPolicy(regions: regions, revocations: revocations)
        var flows: [String: RegionFlowControl] = [:]
        for region in regions {
            flows[region] = RegionFlowControl(region: region, highWatermark: 1 << 20, lowWatermark: 1 << 19)
        }
        let continuation = self.continuation
        let holder = revocations
        let metrics = PipelineMetrics(protocolName: NativeProtocol.name)
        var environment = PipelineEnvironment(
            wireProtocol: NativeProtocol(limits: SessionLimits(), regions: Array(regions), logger: Logger(label: "test")),
            admit: { policy.admit($0) }, regions: RegionHandle.table(flows: flows, sink: HeldSink(), metrics: metrics),
            isVINRevoked: { holder.isRevoked(vin: $0.description) }, metrics: metrics, maxInFlight: .max,
            now: { 1_700_000_000_000 }, logger: Logger(label: "test"))
        environment.observer = EventObserver(continuation: continuation)
        let tls = ReloadableTLSContext(context)
        let registry = ConnectionRegistry(maxConnections: 100, maxPerAddress: 100)
        listener = Listener(
            configuration: .init(
                name: "telemetry", socket: .address(ListenAddress(host: "127.0.0.1", port: 0)),
                limits: ListenerLimits(
                    handshakeTimeout: .seconds(handshakeTimeoutSeconds), idleTimeout: .seconds(idleTimeoutSeconds))),
            tls: tls, registry: registry, environment: environment)
        reloader = TrustReloader(
            load: { TrustMaterial(tlsContext: context, revocations: try Revocations.load(sources), limits: .init()) },
            tls: tls, revocations: revocations, connections: registry, applyLimits: { _ in },
            logger: Logger(label: "test"))
        service = ListenerService(
            listener: listener, drainTimeout: .seconds(1), logger: Logger(label: "test"),
            onBound: { continuation.yield(.bound($0.port ?? -1)) })
    }

    /// Starts the listener, returns its port and the task to cancel.
    func start() async throws -> (port: Int, task: Task<Void, any Error>) {
        let service = self.service
        let task = Task { try await service.run() }
        guard case .bound(let port) = try await nextEvent() else { throw HarnessError.unexpectedEvent }
        return (port, task)
    }

    // An upper bound, not a speed check: generous because parallel tests share a 2-core machine's
    // cooperative threads, some of them blocked waiting for child processes.
    func nextEvent(timeout: Duration = .seconds(60)) async throws -> ListenerEvent {
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
        guard case .session(let peer) = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(peer.role == .vehicle)
        #expect(peer.vin == VIN("LSVAU2180N2183294"))
        #expect(peer.market == "AE")
        #expect(harness.listener.registry.count == 1)
        // The session waits for HELLO (idle timeout 90 s): the server does not close it meanwhile.
        #expect(try await expectClosed(client, within: .milliseconds(300)) == false)
        try await client.close()
    }

    @Test func gatewayCertificateIsAcceptedAsGateway() async throws {
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let gateway = try testAuthority.issueGatewayCertificate(name: "mx-partner-1", market: "MX")
        let client = try await TLSHarness.connect(port: port, credential: gateway)
        guard case .session(let peer) = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(peer.role == .gateway && peer.vin == nil && peer.market == "MX")
        try await client.close()
    }

    /// A TLS-level refusal: reported as a handshake failure, the connection is closed, no session starts.
    private func expectHandshakeFailure(
        _ credential: IssuedCertificate?, maximumTLSVersion: TLSVersion? = nil
    ) async throws {
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        do {
            let client = try await TLSHarness.connect(
                port: port, credential: credential, maximumTLSVersion: maximumTLSVersion)
            #expect(try await expectClosed(client))
        } catch {
            // Refused so early that the connect itself failed: also a refusal.
        }
        let event = try await harness.nextEvent()
        guard case .handshakeFailed = event else {
            Issue.record("expected a handshake failure, got \(event)")
            return
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while harness.listener.registry.count > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(harness.listener.registry.count == 0)
    }

    /// A refusal after the handshake: the session layer reports the ERROR code, then closes.
    private func expectRefused(
        _ credential: IssuedCertificate, code: ErrorCode, prepare: (TLSHarness) throws -> Void = { _ in }
    ) async throws {
        let harness = try TLSHarness()
        try prepare(harness)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let client = try await TLSHarness.connect(port: port, credential: credential)
        let event = try await harness.nextEvent()
        guard case .refused(let actual) = event else {
            Issue.record("expected a refusal, got \(event)")
            return
        }
        #expect(actual == code)
        #expect(try await expectClosed(client))
    }

    @Test func clientWithoutCertificateFailsTheHandshake() async throws {
        try await expectHandshakeFailure(nil)
    }

    @Test func certificateFromAnotherCAFailsTheHandshake() async throws {
        let stranger = try FleetPKI.createCertificateAuthority(commonName: "Some Other CA")
        try await expectHandshakeFailure(try stranger.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE"))
    }

    @Test func expiredCertificateFailsTheHandshake() async throws {
        let past = Date().addingTimeInterval(-30 * 86400)
        let expired = try testAuthority.issueVehicleCertificate(
            vin: "LSVAU2180N2183294", market: "AE",
            validity: CertificateValidity(notValidBefore: past, notValidAfter: past.addingTimeInterval(86400)))
        try await expectHandshakeFailure(expired)
    }

    @Test func tls11ClientFailsTheHandshake() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        try await expectHandshakeFailure(vehicle, maximumTLSVersion: .tlsv11)
    }

    @Test func revokedSerialIsRefusedAfterTheHandshake() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let serial = PeerIdentity.hex(vehicle.certificate.serialNumber.bytes)
        try await expectRefused(vehicle, code: .certificateRevoked) { harness in
            try "serial:\(serial)\n".write(toFile: harness.revocationPath, atomically: true, encoding: .utf8)
            try harness.revocations.reload()
        }
    }

    @Test func revokedVINIsRefusedAfterTheHandshake() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        try await expectRefused(vehicle, code: .certificateRevoked) { harness in
            try "vin:LSVAU2180N2183294\n".write(toFile: harness.revocationPath, atomically: true, encoding: .utf8)
            try harness.revocations.reload()
        }
    }

    @Test func marketOutsideTheConfiguredRegionsIsRefused() async throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "BR")
        try await expectRefused(vehicle, code: .unknownMarket)
    }

    /// The handshake timeout (1 s here) covers HELLO: without it the session is closed, with it only the
    /// idle timeout (90 s) may close the session.
    @Test(arguments: [true, false])
    func handshakeTimeoutCoversHello(sendsHello: Bool) async throws {
        let harness = try TLSHarness(handshakeTimeoutSeconds: 1)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let client = try await TLSHarness.connect(port: port, credential: vehicle)
        guard case .session = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        if sendsHello {
            var hello: [UInt8] = []
            FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "fw 1.0"), to: &hello)
            try await client.writeAndFlush(client.allocator.buffer(bytes: hello))
            #expect(try await expectClosed(client, within: .milliseconds(2500)) == false)
            try await client.close()
        } else {
            #expect(try await expectClosed(client, within: .seconds(10)))
        }
    }

    @Test func stalledHandshakeIsClosedByTheTimeout() async throws {
        let harness = try TLSHarness(handshakeTimeoutSeconds: 1)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        // A plain TCP connection that never speaks TLS.
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        #expect(try await expectClosed(client, within: .seconds(10)))
    }

    @Test func serverPolicyIsTLS12MinimumWithRequiredClientCertificate() throws {
        let server = try testAuthority.issueServerCertificate()
        let configuration = TelemetryTLS.serverConfiguration(
            trustRoots: [try NIOSSLCertificate(bytes: Array(try testAuthority.caCertificatePEM.utf8), format: .pem)],
            certificateChain: [try NIOSSLCertificate(bytes: Array(try server.certificatePEM.utf8), format: .pem)],
            privateKey: try NIOSSLPrivateKey(bytes: Array(server.privateKeyPEM.utf8), format: .pem))
        #expect(configuration.minimumTLSVersion == .tlsv12)
        #expect(configuration.certificateVerification == .noHostnameVerification)
        #expect(!configuration.cipherSuites.contains("CBC") && !configuration.cipherSuites.contains("-SHA:"))
        #expect(configuration.curves?.first == NIOTLSCurve.x25519_MLKEM768)
    }
}
