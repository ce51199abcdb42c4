import Foundation
import HorgosConfig
import HorgosWire
import HorgosWireNIO
import NIOCore
import NIOEmbedded
import Testing

@testable import HorgosServer

/// Records the idle events that reach the end of the pipeline.
final class IdleEventRecorder: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    var idleEvents = 0
    var frames = 0
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames += 1 }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read { idleEvents += 1 }
    }
}

/// Holds reads back while `blocked`, as the session handler does under backpressure.
final class ReadGate: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var blocked = false
    var pending = false
    func read(context: ChannelHandlerContext) {
        if blocked { pending = true } else { context.read() }
    }
    func open(context: ChannelHandlerContext) {
        blocked = false
        if pending {
            pending = false
            context.read()
        }
    }
}

@Suite struct SessionTimerTests {
    /// decoder -> idle timer -> gate (backpressure) -> recorder, on an embedded loop whose clock the test moves.
    struct Pipeline {
        let channel = EmbeddedChannel()
        let recorder = IdleEventRecorder()
        let gate = ReadGate()
        var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

        init(timeoutSeconds: Int64 = 10) throws {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameChannelDecoder(maxPayload: 65_536)))
            try channel.pipeline.syncOperations.addHandler(FrameIdleTimeoutHandler<InboundFrame>(timeout: .seconds(timeoutSeconds)))
            try channel.pipeline.syncOperations.addHandler(gate)
            try channel.pipeline.syncOperations.addHandler(recorder)
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        }

        func feed(_ bytes: [UInt8]) throws {
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
            channel.pipeline.fireChannelReadComplete()
        }

        /// The next read the channel issues after a read completed (autoRead does this in a real channel).
        func requestRead() { channel.pipeline.read() }

        func ping() -> [UInt8] {
            var bytes: [UInt8] = []
            FrameEncoder.appendPing(12, type: .ping, sequence: 1, to: &bytes)
            return bytes
        }
    }

    @Test func completeFramesRestartTheIdleClockButATrickleOfBytesDoesNot() throws {
        let p = try Pipeline()
        p.requestRead()
        p.loop.advanceTime(by: .seconds(6))
        try p.feed(p.ping())
        p.requestRead()
        p.loop.advanceTime(by: .seconds(6))
        #expect(p.recorder.idleEvents == 0)  // 6 s since the PING
        // One byte a second of a frame that never completes: the clock keeps running.
        var partial: [UInt8] = []
        FrameEncoder.appendPing(13, type: .ping, sequence: 2, to: &partial)
        for byte in partial.prefix(5) {
            try p.feed([byte])
            p.requestRead()
            p.loop.advanceTime(by: .seconds(1))
        }
        #expect(p.recorder.frames == 1)
        #expect(p.recorder.idleEvents == 1)  // 11 s after the last complete frame
    }

    @Test func theIdleClockIsPausedWhileTheServerIsNotReading() throws {
        let p = try Pipeline()
        p.requestRead()
        try p.feed(p.ping())
        p.gate.blocked = true
        p.requestRead()  // held back by the gate: the server is not reading
        p.loop.advanceTime(by: .seconds(120))
        #expect(p.recorder.idleEvents == 0)  // a silent client under backpressure is not idle
        let gateContext = try p.channel.pipeline.syncOperations.context(handler: p.gate)
        p.gate.open(context: gateContext)  // reading resumes: a whole timeout from now
        p.loop.advanceTime(by: .seconds(9))
        #expect(p.recorder.idleEvents == 0)
        p.loop.advanceTime(by: .seconds(2))
        #expect(p.recorder.idleEvents == 1)
    }

    @Test func handshakeTimerRunsUntilHelloIsAccepted() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HandshakeTimeoutHandler(timeout: .seconds(5)))
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEventStandIn.handshakeCompleted)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)  // TLS done, no HELLO: closed at the handshake timeout

        let second = EmbeddedChannel()
        try second.pipeline.syncOperations.addHandler(HandshakeTimeoutHandler(timeout: .seconds(5)))
        second.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        second.embeddedEventLoop.advanceTime(by: .seconds(3))
        second.pipeline.triggerUserOutboundEvent(SessionEvent.helloAccepted, promise: nil)
        second.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(second.isActive)
        #expect((try? second.pipeline.syncOperations.handler(type: HandshakeTimeoutHandler.self)) == nil)
    }

    /// A reload of `limits.idle_timeout_seconds` reaches the open session: a shorter value already past
    /// since the last complete frame fires at once, a longer one moves the deadline out.
    @Test func aReloadedIdleTimeoutReachesTheOpenSession() throws {
        let shorter = try Pipeline(timeoutSeconds: 90)
        shorter.requestRead()
        try shorter.feed(shorter.ping())
        shorter.requestRead()
        shorter.loop.advanceTime(by: .seconds(20))
        #expect(shorter.recorder.idleEvents == 0)
        shorter.channel.pipeline.fireUserInboundEventTriggered(
            SessionTimeoutsReloaded(handshakeTimeout: .seconds(10), idleTimeout: .seconds(15)))
        shorter.loop.run()
        #expect(shorter.recorder.idleEvents == 1)  // 20 s since the PING, past the new 15 s

        let longer = try Pipeline(timeoutSeconds: 10)
        longer.requestRead()
        longer.loop.advanceTime(by: .seconds(5))
        longer.channel.pipeline.fireUserInboundEventTriggered(
            SessionTimeoutsReloaded(handshakeTimeout: .seconds(10), idleTimeout: .seconds(60)))
        longer.loop.advanceTime(by: .seconds(50))
        #expect(longer.recorder.idleEvents == 0)  // the old 10 s would have fired
        longer.loop.advanceTime(by: .seconds(6))
        #expect(longer.recorder.idleEvents == 1)
    }

    /// A reload of `limits.handshake_timeout_seconds` reaches a connection still before HELLO, counted from
    /// its accept; after HELLO the handler is gone and the reload has nothing to change.
    @Test func aReloadedHandshakeTimeoutReachesConnectionsBeforeHello() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HandshakeTimeoutHandler(timeout: .seconds(60)))
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        channel.pipeline.fireUserInboundEventTriggered(
            SessionTimeoutsReloaded(handshakeTimeout: .seconds(5), idleTimeout: .seconds(90)))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(900))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)  // 5.1 s after the accept, not 60
    }

    enum TLSUserEventStandIn { case handshakeCompleted }
}

@Suite struct TrustConfigurationTests {
    /// The guard covers every listener: the telemetry one and the GB/T 32960 one (with or without its TLS).
    @Test(arguments: ["telemetry", "gbt32960", "gbt32960 plain"])
    func developmentPKIIsRefusedOffLoopbackUnlessAskedFor(listener: String) {
        var configuration = HorgosConfiguration()
        #expect(DevelopmentPKIPolicy.refusal(configuration) == nil)  // loopback defaults
        let exposed = ListenAddress(host: "0.0.0.0", port: 7443)
        switch listener {
        case "telemetry": configuration.listen.telemetry = exposed
        default:
            configuration.gbt32960.listen = exposed
            configuration.gbt32960.tls = listener == "gbt32960"
        }
        let refusal = DevelopmentPKIPolicy.refusal(configuration)
        #expect(refusal?.contains("tls.ca_certificate") == true)
        #expect(refusal?.contains("listen.\(listener.split(separator: " ")[0]) 0.0.0.0:7443") == true)
        configuration.tls.development = true
        #expect(DevelopmentPKIPolicy.refusal(configuration) == nil)
        configuration.tls.development = false
        configuration.tls = .init(caCertificate: "/ca", serverCertificate: "/crt", serverKey: "/key")
        #expect(DevelopmentPKIPolicy.refusal(configuration) == nil)  // real certificates: no dev PKI at all
        #expect(DevelopmentPKIPolicy.isLoopback("127.0.0.53") && DevelopmentPKIPolicy.isLoopback("::1"))
        #expect(!DevelopmentPKIPolicy.isLoopback("10.0.0.1") && !DevelopmentPKIPolicy.isLoopback("::"))
    }
}

@Suite struct TrustConfigurationKeyTests {
    @Test func trustKeysAreReadFromYAMLAndTheEnvironment() async throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/horgosd.yaml"
        try """
            tls:
              crl: [/etc/horgos/pki/fleet.crl, /etc/horgos/pki/partner.crl]
              development: true
              key_exchange_groups: [x25519, secp256r1]
            limits:
              max_buffered_bytes: 67108864

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try await HorgosConfiguration.load(filePath: path, environment: [:])
        #expect(c.tls.crlFiles == ["/etc/horgos/pki/fleet.crl", "/etc/horgos/pki/partner.crl"])
        #expect(c.tls.development)
        #expect(c.tls.keyExchangeGroups == [.x25519, .secp256r1])
        #expect(c.limits.maxBufferedBytes == 64 << 20)
        let env = try await HorgosConfiguration.load(
            filePath: nil, environment: ["HORGOS_TLS_CRL": "/a.crl,/b.crl", "HORGOS_TLS_KEY_EXCHANGE_GROUPS": "x25519"])
        #expect(env.tls.crlFiles == ["/a.crl", "/b.crl"])
        #expect(env.tls.keyExchangeGroups == [.x25519])
        let defaults = try await HorgosConfiguration.load(filePath: nil, environment: [:])
        #expect(defaults.tls.keyExchangeGroups == KeyExchangeGroup.defaultOrder && !defaults.tls.development)
    }

    @Test func unknownGroupsAndBadBooleansNameTheKey() async throws {
        for (key, value, variable) in [
            ("tls.key_exchange_groups", "x25519,ffdhe2048", "HORGOS_TLS_KEY_EXCHANGE_GROUPS"),
            ("tls.development", "maybe", "HORGOS_TLS_DEVELOPMENT"),
            ("limits.max_buffered_bytes", "1000", "HORGOS_LIMITS_MAX_BUFFERED_BYTES"),
        ] {
            do {
                _ = try await HorgosConfiguration.load(filePath: nil, environment: [variable: value])
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect(error.key == key)
            }
        }
    }
}
