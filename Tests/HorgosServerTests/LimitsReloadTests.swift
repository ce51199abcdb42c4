import Foundation
import HorgosConfig
import HorgosPKI
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOSSL
import Synchronization
import Testing

@testable import HorgosServer

/// The frames a test client received, as far as these tests look at them.
final class ReceivedFrames: ChannelInboundHandler, Sendable {
    typealias InboundIn = InboundFrame
    /// A received frame: WELCOME, BYE with its reason, or anything else.
    enum Received: Sendable, Hashable {
        case welcome
        case bye(Bye.Reason)
        case other(FrameType)
    }

    let frames = Mutex<[Received]>([])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let received: Received = frame.bytes.withUnsafeReadableBytes { raw in
            switch (try? FrameDecoder().decode(raw)).flatMap({ try? $0.message() }) {
            case .welcome: .welcome
            case .bye(let bye): .bye(bye.reason)
            default: .other(frame.header.type)
            }
        }
        frames.withLock { $0.append(received) }
    }

    /// Waits (polling) until `frame` has been received; false after `timeout`.
    func waitFor(_ frame: Received, timeout: Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if frames.withLock({ $0.contains(frame) }) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return frames.withLock { $0.contains(frame) }
    }
}

/// A reload of `limits.*` (SIGHUP, through ``TrustReloader`` as the daemon wires it) reaches the open
/// sessions: the handshake and idle timeouts in force are the reloaded ones.
///
/// The listener starts with 600 s timeouts and the reload shortens them; the sessions then end by the
/// new values (BYE with reason idle timeout, or the close before HELLO) where the old ones would have
/// kept them open for ten minutes. The waits are upper bounds, not speed checks.
@Suite(.serialized) struct LimitsReloadTests {
    /// The reloader the daemon builds: `limits.*` go to the listener (and through it to open sessions).
    func reloader(_ harness: TLSHarness, limits: HorgosConfiguration.Limits) -> TrustReloader {
        let listener = harness.listener
        let revocations = harness.revocations
        let tls = listener.tls!
        return TrustReloader(
            load: { TrustMaterial(tlsContext: tls.context, revocations: revocations.revocations, limits: limits) },
            tls: tls, revocations: revocations, connections: listener.registry,
            applyLimits: { limits in
                listener.apply(ListenerLimits(limits))
                listener.registry.reloadTimeouts(
                    SessionTimeoutsReloaded(
                        handshakeTimeout: .seconds(Int64(limits.handshakeTimeoutSeconds)),
                        idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds))))
            },
            logger: Logger(label: "test"))
    }

    func connect(port: Int) async throws -> (channel: any Channel, received: ReceivedFrames) {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let channel = try await TLSHarness.connect(port: port, credential: vehicle)
        let received = ReceivedFrames()
        try await channel.eventLoop.submit {
            let decoder = ByteToMessageHandler(FrameChannelDecoder(maxPayload: 1 << 20))
            try channel.pipeline.syncOperations.addHandler(decoder)
            try channel.pipeline.syncOperations.addHandler(received)
        }.get()
        return (channel, received)
    }

    @Test func aShorterIdleTimeoutReloadedWhileASessionIsOpenEndsItWithByeIdleTimeout() async throws {
        let harness = try TLSHarness(handshakeTimeoutSeconds: 600, idleTimeoutSeconds: 600)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let (client, received) = try await connect(port: port)
        var hello: [UInt8] = []
        FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "reload"), to: &hello)
        try await client.writeAndFlush(client.allocator.buffer(bytes: hello))
        #expect(try await received.waitFor(.welcome))

        let verdict = await reloader(harness, limits: .init(idleTimeoutSeconds: 2, heartbeatIntervalSeconds: 1))
            .reload()
        #expect(verdict.succeeded)
        // The session sends nothing more: the reloaded 2 s idle timeout ends it, not the 600 s it began with.
        #expect(try await received.waitFor(.bye(.idleTimeout)))
        #expect(try await expectClosed(client, within: .seconds(30)))
        // New connections get the reloaded value too.
        #expect(harness.listener.limits.idleTimeout == .seconds(2))
    }

    @Test func aShorterHandshakeTimeoutReloadedBeforeHelloClosesTheWaitingConnection() async throws {
        let harness = try TLSHarness(handshakeTimeoutSeconds: 600, idleTimeoutSeconds: 600)
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let (client, _) = try await connect(port: port)  // TLS done, no HELLO
        guard case .session = try await harness.nextEvent() else {
            Issue.record("expected a session")
            return
        }
        #expect(client.isActive)
        let verdict = await reloader(harness, limits: .init(handshakeTimeoutSeconds: 1)).reload()
        #expect(verdict.succeeded)
        #expect(try await expectClosed(client, within: .seconds(30)))
    }
}
