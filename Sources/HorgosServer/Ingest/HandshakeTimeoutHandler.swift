import NIOCore
import NIOTLS

/// Closes a connection whose TLS handshake has not completed within the timeout.
///
/// Stops clients that connect and send nothing, or stall inside the handshake, from holding a file
/// descriptor; idle connections after the handshake are the idle-state handler's job.
public final class HandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var task: Scheduled<Void>?
    private let onTimeout: @Sendable () -> Void

    public init(timeout: TimeAmount, onTimeout: @escaping @Sendable () -> Void = {}) {
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        schedule(context: context)
        context.fireChannelActive()
    }

    private func schedule(context: ChannelHandlerContext) {
        guard task == nil else { return }
        let channel = context.channel
        let onTimeout = self.onTimeout
        task = context.eventLoop.scheduleTask(in: timeout) {
            onTimeout()
            channel.close(promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tls = event as? TLSUserEvent, case .handshakeCompleted = tls else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        task?.cancel()
        task = nil
        // Pass the event on first: once removed, this context no longer forwards anything.
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension HandshakeTimeoutHandler: Sendable {}
