import HorgosGBT32960
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A GB/T 32960 test unit: connects over TLS with a given certificate, sends raw frames and records
/// every frame the server answers (whole, as bytes) and whether the connection closed.
final class GBT32960Client: Sendable {
    let channel: any Channel
    let recorder: Recorder

    final class Recorder: Sendable {
        let frames = Mutex<[[UInt8]]>([])
        let pending = Mutex<[UInt8]>([])
        let closed = Atomic<Bool>(false)
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let recorder: Recorder
        init(recorder: Recorder) { self.recorder = recorder }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            recorder.pending.withLock { pending in
                pending += buffer.readableBytesView
                while true {
                    let length: Int? = pending.withUnsafeBytes { raw in
                        guard case .frame(let header)? = try? GBT32960Decoder().scan(raw) else { return nil }
                        return header.frameLength
                    }
                    guard let length else { break }
                    let frame = Array(pending[0..<length])
                    pending.removeFirst(length)
                    recorder.frames.withLock { $0.append(frame) }
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) { recorder.closed.store(true, ordering: .relaxed) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    private init(channel: any Channel, recorder: Recorder) {
        self.channel = channel
        self.recorder = recorder
    }

    /// Connects (TLS unless `context` is nil); `proxyHeader` goes out before TLS.
    static func connect(port: Int, context: NIOSSLContext?, proxyHeader: [UInt8]? = nil) async throws -> GBT32960Client {
        let recorder = Recorder()
        let channel = try await ClientBootstrap(group: WireClient.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let proxyHeader { try channel.pipeline.syncOperations.addHandler(ProxyHeaderWriter(proxyHeader)) }
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    }
                    try channel.pipeline.syncOperations.addHandler(Handler(recorder: recorder))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return GBT32960Client(channel: channel, recorder: recorder)
    }

    func send(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer)
    }

    var answers: [[UInt8]] { recorder.frames.withLock { $0 } }
    var isClosed: Bool { recorder.closed.load(ordering: .relaxed) }

    /// Waits until `count` answers arrived (or the timeout passes); returns the answers.
    @discardableResult
    func waitForAnswers(_ count: Int, timeout: Duration = .seconds(15)) async throws -> [[UInt8]] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline && answers.count < count { try await Task.sleep(for: .milliseconds(10)) }
        return answers
    }

    /// Sends `frame` and returns the next answer (nil: none within the timeout).
    func request(_ frame: [UInt8], timeout: Duration = .seconds(15)) async throws -> [UInt8]? {
        let before = answers.count
        try await send(frame)
        let after = try await waitForAnswers(before + 1, timeout: timeout)
        return after.count > before ? after[before] : nil
    }

    func close() async { try? await channel.close() }
}
