import NIOCore
import NIOTLS

/// Closes a connection that has not completed its TLS handshake *and* had its HELLO accepted within the
/// timeout (`limits.handshake_timeout_seconds`, counted from the connection becoming active).
///
/// Stops clients that connect and send nothing, stall inside the handshake, or finish TLS and then never
/// send HELLO, from holding a file descriptor. The session handler behind it announces the accepted HELLO
/// with the outbound user event ``SessionEvent/helloAccepted``; the timer is then cancelled and this
/// handler leaves the pipeline. Idle connections after HELLO are the idle timer's job.
public final class HandshakeTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny

    private var timeout: TimeAmount
    /// When the connection became active (the timeout counts from there, also after a reload).
    private var startedAt: NIODeadline?
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
        let started = startedAt ?? context.eventLoop.now
        startedAt = started
        let channel = context.channel
        let onTimeout = self.onTimeout
        task = context.eventLoop.scheduleTask(deadline: started + timeout) {
            onTimeout()
            channel.close(promise: nil)
        }
    }

    /// A reload changed `limits.handshake_timeout_seconds`: re-arm, still counted from the accept.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let reloaded = event as? SessionTimeoutsReloaded, reloaded.handshakeTimeout != timeout {
            timeout = reloaded.handshakeTimeout
            if let pending = task {
                pending.cancel()
                task = nil
                schedule(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let session = event as? SessionEvent, session == .helloAccepted else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        task?.cancel()
        task = nil
        promise?.succeed(())
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
