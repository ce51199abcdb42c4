import Foundation
import HorgosPKI
import HorgosSessionTraces
import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import Synchronization
import Testing

@testable import HorgosServer

/// Storage that commits every frame at once.
struct CommittingSink: IngestSink {
    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        submission.completion(CommitOutcome(stored: 1, duplicates: 0, rejected: 0))
    }
}

/// Counts the ACK frames a client receives.
final class AckCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = InboundFrame
    /// The highest sequence acknowledged so far.
    let acks = Atomic<Int>(0)
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.header.type == .ack else { return }
        let payload = frame.payload
        let sequence = payload.getInteger(at: payload.readerIndex, endianness: .little, as: UInt32.self) ?? 0
        acks.store(Int(sequence), ordering: .relaxed)
    }
}

@Suite(.serialized) struct SlowInputTests {
    /// 2,000 TLS sessions trickle 60,000-byte frames that never complete; the ``BufferedBytesBudget``
    /// (`limits.max_buffered_bytes`) keeps the bytes the listener holds under the bound (plus one armed
    /// read per connection), and a healthy vehicle's frames are still acknowledged meanwhile.
    ///
    /// The server runs in this process, so this test asserts the budget's own count, not memory; the
    /// daemon's RSS under the same load is asserted by `SlowInputEndToEndTests` (horgosd as a child).
    @Test(.timeLimit(.minutes(10)))
    func tricklingPartialFramesStayUnderTheBufferedBytesBoundWhileAHealthyVehicleIsAcked() async throws {
        let connections = 2000
        let bound = 32 << 20
        #expect(ProcessResources.raiseOpenFileLimit(to: 2 * connections + 500) >= 2 * connections + 200)
        let budget = BufferedBytesBudget(limit: bound)
        let server = try testAuthority.issueServerCertificate()
        let context = try TelemetryTLS.makeServerContext(
            caCertificatePEM: try testAuthority.caCertificatePEM, certificateChainPEM: try server.certificatePEM,
            privateKeyPEM: server.privateKeyPEM)
        let revocations = try RevocationListHolder(path: nil, required: false)
        let policy = PeerAdmissionPolicy(regions: ["AE"], revocations: revocations)
        let metrics = PipelineMetrics(protocolName: NativeProtocol.name)
        let environment = PipelineEnvironment(
            wireProtocol: NativeProtocol(limits: SessionLimits(), regions: ["AE"], logger: Logger(label: "test")),
            admit: { policy.admit($0) },
            regions: RegionHandle.table(
                flows: ["AE": RegionFlowControl(region: "AE", highWatermark: 64 << 20, lowWatermark: 32 << 20)],
                sink: CommittingSink(), metrics: metrics),
            budget: budget, metrics: metrics, maxInFlight: .max, now: { Int64(Date().timeIntervalSince1970 * 1000) },
            logger: Logger(label: "test"))
        let listener = Listener(
            configuration: .init(
                name: "telemetry", socket: .address(ListenAddress(host: "127.0.0.1", port: 0)),
                limits: ListenerLimits(handshakeTimeout: .seconds(120), idleTimeout: .seconds(600))),
            tls: ReloadableTLSContext(context),
            registry: ConnectionRegistry(maxConnections: connections + 10, maxPerAddress: connections + 10),
            environment: environment)
        let address = try await listener.start()
        let port = try #require(address.port)

        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(try testAuthority.caCertificatePEM.utf8), format: .pem)])
        tls.certificateVerification = .noHostnameVerification
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: Array(try vehicle.certificatePEM.utf8), format: .pem))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(vehicle.privateKeyPEM.utf8), format: .pem))
        let clientContext = try NIOSSLContext(configuration: tls)
        let clientGroup = MultiThreadedEventLoopGroup.singleton
        func connect(_ counter: AckCounter? = nil) async throws -> any Channel {
            try await ClientBootstrap(group: clientGroup)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: clientContext, serverHostname: "localhost"))
                        if let counter {
                            try channel.pipeline.syncOperations.addHandler(
                                ByteToMessageHandler(FrameChannelDecoder(maxPayload: 65_536)))
                            try channel.pipeline.syncOperations.addHandler(counter)
                        }
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
        }
        var hello: [UInt8] = []
        FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "slow"), to: &hello)
        // The header of a 60,000-byte TELEMETRY frame (payload 59,984 bytes) that never completes.
        var header: [UInt8] = [0x48, 0x47, 0x01, 0x10, 0x01, 0x00, 0x00, 0x00]
        header += withUnsafeBytes(of: UInt32(59_984).littleEndian, Array.init)

        var slow: [any Channel] = []
        for _ in 0..<connections {
            let channel = try await connect()
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: hello + header))
            slow.append(channel)
        }
        let healthyAcks = AckCounter()
        let healthy = try await connect(healthyAcks)
        try await healthy.writeAndFlush(healthy.allocator.buffer(bytes: hello))

        // Trickle: 20 rounds of 2,900 bytes to every slow connection (58,000 of the 59,984 payload bytes,
        // 116 MB in all against a 32 MiB bound), a healthy frame after each round.
        let chunk = [UInt8](repeating: 0x5A, count: 2900)
        var maxUsed = 0
        for round in 1...20 {
            for channel in slow { channel.writeAndFlush(channel.allocator.buffer(bytes: chunk), promise: nil) }
            var frame: [UInt8] = []
            FrameEncoder.appendTelemetry(
                vin: VIN("LSVAU2180N2183294")!, baseTimeMs: Int64(Date().timeIntervalSince1970 * 1000),
                records: [TelemetryRecord(timeOffsetMs: 0, soc: 50)], sequence: UInt32(round), to: &frame)
            try await healthy.writeAndFlush(healthy.allocator.buffer(bytes: frame))
            try await Task.sleep(for: .milliseconds(200))
            maxUsed = max(maxUsed, budget.used)
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while healthyAcks.acks.load(ordering: .relaxed) < 20 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        // Every healthy frame acknowledged (cumulative ACK of sequence 20).
        #expect(healthyAcks.acks.load(ordering: .relaxed) == 20)
        #expect(healthy.isActive)
        // What the server holds: the bound, plus the one read each connection had armed when the bound was
        // crossed (NIO arms the next read before the count rises; a held connection arms no further one).
        // That read carries what had arrived: under load, up to two trickle rounds of a connection.
        #expect(maxUsed <= bound + connections * 2 * chunk.count)
        #expect(listener.registry.count == connections + 1)  // nobody was dropped to make room
        print("slow input (in process): held \(maxUsed >> 20) MiB at most, bound \(bound >> 20) MiB")
        for channel in slow { channel.close(promise: nil) }
        try await healthy.close()
        await listener.drain(timeout: .seconds(5))
    }
}

/// What ``PartialFrameBudgetHandler`` counts: the buffer a partial frame pins, not its payload bytes.
@Suite struct PartialFrameChargeTests {
    @Test func aSmallRecordInALargeReadBufferIsChargedItsRightSizedCopyAndAnArmedReadReservesADoubling() throws {
        let budget = BufferedBytesBudget(limit: 1 << 20)
        let partial = PartialFrameBudgetHandler(budget: budget)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(partial)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        // 2,900 plaintext bytes in a 32 KiB buffer, as NIO-SSL delivers a small record.
        var record = channel.allocator.buffer(capacity: 32 << 10)
        record.writeRepeatingByte(0x5A, count: 2900)
        try channel.writeInbound(record)
        let forwarded = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(forwarded.readableBytes == 2900)
        #expect(forwarded.capacity < 8 << 10)  // the decoder does not keep the 32 KiB buffer
        #expect(budget.used == forwarded.capacity)
        channel.pipeline.read()  // the next read, armed while the frame is partial
        #expect(budget.used == 2 * forwarded.capacity)
        var more = channel.allocator.buffer(capacity: 32 << 10)
        more.writeRepeatingByte(0x5A, count: 2900)
        try channel.writeInbound(more)
        #expect(budget.used == PartialFrameBudgetHandler.grownCapacity(5800))  // 8 KiB, the reservation gone
        partial.framed(5800)
        #expect(budget.used == 0)
        _ = try channel.finish()
    }
}
