import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP proxy whose directions can be held: what one side sends waits in the proxy (in order)
/// until `release()`. The stream's "acknowledged only after JetStream's ack" test puts it between
/// `horgosd` and a NATS server and holds the PubAcks while the server already stored the messages; the
/// disk-mode failover test holds the publishes, so the owner dies with acknowledged records the stream
/// does not have.
final class TCPProxy: Sendable {
    final class Control: Sendable {
        private let state = Mutex<(holding: Bool, held: [(any Channel, ByteBuffer)])>((false, []))

        /// Queues `buffer` for `channel` while holding; false: forward it now.
        func hold(_ buffer: ByteBuffer, for channel: any Channel) -> Bool {
            state.withLock { state in
                guard state.holding else { return false }
                state.held.append((channel, buffer))
                return true
            }
        }

        func setHolding(_ holding: Bool) -> [(any Channel, ByteBuffer)] {
            state.withLock { state in
                state.holding = holding
                defer { if !holding { state.held.removeAll() } }
                return holding ? [] : state.held
            }
        }

        var heldBytes: Int { state.withLock { $0.held.reduce(0) { $0 + $1.1.readableBytes } } }
    }

    let port: Int
    private let server: any Channel
    /// What the server sends (toward the client), and what the client sends.
    let control: Control
    let clientControl: Control

    private init(server: any Channel, control: Control, clientControl: Control) {
        self.server = server
        self.control = control
        self.clientControl = clientControl
        port = server.localAddress?.port ?? 0
    }

    /// A proxy on a free loopback port to `127.0.0.1:targetPort`.
    static func start(targetPort: Int) async throws -> TCPProxy {
        let control = Control()
        let clientControl = Control()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            try outbound.pipeline.syncOperations.addHandler(Forward(to: inbound, control: control))
                        }
                    }
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMapThrowing { outbound in
                        try inbound.pipeline.syncOperations.addHandler(Forward(to: outbound, control: clientControl))
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TCPProxy(server: server, control: control, clientControl: clientControl)
    }

    /// From now on the server's bytes wait in the proxy.
    func holdServerToClient() { _ = control.setHolding(true) }

    /// From now on the client's bytes wait in the proxy (the server sees nothing: a partition).
    func holdClientToServer() { _ = clientControl.setHolding(true) }

    /// Sends what was held, in order, both ways, and forwards again.
    func release() {
        for (channel, buffer) in control.setHolding(false) + clientControl.setHolding(false) {
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    func close() { server.close(promise: nil) }

    /// Copies what one side reads to the other side (server-to-client through `control`).
    final class Forward: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let partner: any Channel
        let control: Control?

        init(to partner: any Channel, control: Control?) {
            self.partner = partner
            self.control = control
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            if let control, control.hold(buffer, for: partner) { return }
            partner.writeAndFlush(buffer, promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            partner.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
