import Foundation
import HorgosPKI
import HorgosWire
import HorgosWireNIO
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// What a test client saw from the server.
enum ServerReply: Equatable, Sendable {
    case welcome(Welcome)
    case ack(Ack)
    case error(ErrorCode?)
    case pong(UInt64)
    case bye(Bye.Reason)
    case other(FrameType)
}

/// A minimal protocol client for end-to-end tests: connects with a given certificate, sends raw
/// bytes, and records every frame the server sends and whether the connection closed.
final class WireClient: Sendable {
    let channel: any Channel
    let recorder: ReplyRecorder

    final class ReplyRecorder: Sendable {
        let replies = Mutex<[ServerReply]>([])
        /// Every frame the server sent, as received (for the session-trace sample).
        let frames = Mutex<[[UInt8]]>([])
        let closed = Atomic<Bool>(false)
        let handshakeDone = Atomic<Bool>(false)
        let handshakeError = Mutex<String?>(nil)
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = InboundFrame
        let recorder: ReplyRecorder
        init(recorder: ReplyRecorder) { self.recorder = recorder }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
                recorder.handshakeDone.store(true, ordering: .relaxed)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            let reply: ServerReply = frame.bytes.withUnsafeReadableBytes { raw in
                let view = FrameView(
                    header: frame.header,
                    payload: UnsafeRawBufferPointer(rebasing: raw[WireFormat.headerSize..<(raw.count - 4)]))
                switch try? view.message() {
                case .welcome(let w): return .welcome(w)
                case .ack(let a): return .ack(a)
                case .error(let e): return .error(e.knownCode)
                case .pong(let o): return .pong(o)
                case .bye(let b): return .bye(b.reason)
                default: return .other(frame.header.type)
                }
            }
            recorder.replies.withLock { $0.append(reply) }
            recorder.frames.withLock { $0.append(Array(frame.bytes.readableBytesView)) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            recorder.closed.store(true, ordering: .relaxed)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !recorder.handshakeDone.load(ordering: .relaxed) {
                recorder.handshakeError.withLock { $0 = "\(error)" }
            }
            context.close(promise: nil)
        }
    }

    private init(channel: any Channel, recorder: ReplyRecorder) {
        self.channel = channel
        self.recorder = recorder
    }

    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// A TLS client context presenting `issued` (or no certificate), trusting `caPEM`.
    static func context(issued: IssuedCertificate?, caPEM: String, minimumTLS: TLSVersion = .tlsv12,
                        maximumTLS: TLSVersion? = nil) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = minimumTLS
        tls.maximumTLSVersion = maximumTLS
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(caPEM.utf8), format: .pem)])
        tls.certificateVerification = .fullVerification
        if let issued {
            tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: try issued.certificateDER, format: .der))]
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.privateKeyPEM.utf8), format: .pem))
        }
        return try NIOSSLContext(configuration: tls)
    }

    /// Connects; `proxyHeader` (a PROXY v2 header, as a load balancer sends) goes out before TLS.
    static func connect(port: Int, context: NIOSSLContext, proxyHeader: [UInt8]? = nil) async throws -> WireClient {
        let recorder = ReplyRecorder()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let proxyHeader { try channel.pipeline.syncOperations.addHandler(ProxyHeaderWriter(proxyHeader)) }
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameChannelDecoder(maxPayload: 1 << 20)))
                    try channel.pipeline.syncOperations.addHandler(Handler(recorder: recorder))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return WireClient(channel: channel, recorder: recorder)
    }

    func send(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer)
    }

    /// Sends data frame `sequence` once fewer than `window` frames are unacknowledged, as firmware must.
    func sendWithinWindow(_ bytes: [UInt8], sequence: UInt32, window: UInt32) async throws {
        if sequence > window {
            _ = try await waitFor(timeout: .seconds(10)) { replies in
                replies.contains { ($0.ack?.sequence ?? 0) >= sequence - window }
            }
        }
        try await send(bytes)
    }

    var replies: [ServerReply] { recorder.replies.withLock { $0 } }
    var isClosed: Bool { recorder.closed.load(ordering: .relaxed) }
    var handshakeError: String? { recorder.handshakeError.withLock { $0 } }

    /// Waits until `condition` holds for the replies (or the timeout passes); returns the replies.
    @discardableResult
    func waitFor(timeout: Duration = .seconds(10), _ condition: ([ServerReply]) -> Bool) async throws -> [ServerReply] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let current = replies
            if condition(current) { return current }
            try await Task.sleep(for: .milliseconds(10))
        }
        return replies
    }

    func waitClosed(timeout: Duration = .seconds(10)) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline && !isClosed { try await Task.sleep(for: .milliseconds(10)) }
        return isClosed
    }

    func close() async { try? await channel.close() }

    /// HELLO for a vehicle or gateway.
    static func hello(_ kind: Hello.ClientKind = .vehicle) -> [UInt8] {
        var bytes: [UInt8] = []
        FrameEncoder.appendHello(Hello(clientKind: kind, clientTimeMs: 0, softwareVersion: "e2e"), to: &bytes)
        return bytes
    }

    /// A TELEMETRY frame of `records` records `spacingMs` apart (one second by default), from `startMs`.
    static func telemetry(
        vin: VIN, sequence: UInt32, startMs: Int64, records: Int = 1, spacingMs: UInt32 = 1000
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        let list = (0..<records).map {
            TelemetryRecord(timeOffsetMs: UInt32($0) * spacingMs, latitudeE7: 252_000_000, longitudeE7: 553_000_000,
                            speedDkmh: 500, soc: 77, maxCellTemp: 30, minCellTemp: 25)
        }
        FrameEncoder.appendTelemetry(vin: vin, baseTimeMs: startMs, records: list, sequence: sequence, to: &bytes)
        return bytes
    }
}

/// Writes a PROXY v2 header when the connection becomes active, before anything behind it (TLS) writes.
final class ProxyHeaderWriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let header: [UInt8]
    init(_ header: [UInt8]) { self.header = header }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: header)), promise: nil)
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// A PROXY v2 header (PROXY command, TCP over IPv4) naming `client` as the source.
    static func header(client: String, port: UInt16 = 40_000) -> [UInt8] {
        var bytes: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 12]
        bytes += client.split(separator: ".").map { UInt8($0)! }
        bytes += [127, 0, 0, 1]
        bytes += [UInt8(port >> 8), UInt8(port & 0xFF), 0x1D, 0x13]
        return bytes
    }
}

extension ServerReply {
    var ack: Ack? {
        if case .ack(let ack) = self { return ack }
        return nil
    }
}
