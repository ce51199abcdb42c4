import HorgosWireNIO
import NIOCore

/// The idle timeout of a session, counted in complete frames and paused while the server is the one not
/// reading.
///
/// Sits between the frame decoder and the session handler. The clock restarts at every complete frame
/// (bytes of a partial frame do not count, so a one-byte trickle cannot keep a session open). While the
/// session handler holds reads back (its region's queue is above the high watermark, or the global
/// buffered-bytes bound is reached) the clock is paused: after a read completes and no new `read()` has
/// passed this handler, the server is not reading and a silent client is not idle. When reading resumes
/// the client gets a full `timeout` again. On expiry it fires `IdleStateHandler.IdleStateEvent.read`
/// inbound, which the session handler answers with BYE (idle timeout).
///
/// `Frame` is what the protocol's decoder before it produces (`InboundFrame`, ``GBT32960Inbound``): the same
/// rule for every protocol.
public final class FrameIdleTimeoutHandler<Frame>: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = Frame
    public typealias InboundOut = Frame
    public typealias OutboundIn = NIOAny

    private var timeout: TimeAmount
    private var lastFrame: NIODeadline = .now()
    /// A read completed and the server has not asked for the next one yet.
    private var serverNotReading = false
    private var task: Scheduled<Void>?
    private var fired = false

    /// A timer of `timeout` between complete frames.
    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        lastFrame = context.eventLoop.now
        if context.channel.isActive { schedule(context: context, at: lastFrame + timeout) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        lastFrame = context.eventLoop.now
        schedule(context: context, at: lastFrame + timeout)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastFrame = context.eventLoop.now
        context.fireChannelRead(data)
    }

    /// A reload changed `limits.idle_timeout_seconds`: the running clock re-arms to the new value, still
    /// counted from the last complete frame (a shorter one past due fires at once). A paused clock takes
    /// the new value when reading resumes.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let reloaded = event as? SessionTimeoutsReloaded, reloaded.idleTimeout != timeout {
            timeout = reloaded.idleTimeout
            if task != nil { schedule(context: context, at: lastFrame + timeout) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        serverNotReading = true
        context.fireChannelReadComplete()
    }

    public func read(context: ChannelHandlerContext) {
        if serverNotReading {
            serverNotReading = false
            if task == nil && !fired {
                // Reading resumes after a pause: the client gets a whole timeout from now.
                lastFrame = context.eventLoop.now
                schedule(context: context, at: lastFrame + timeout)
            }
        }
        context.read()
    }

    private func schedule(context: ChannelHandlerContext, at deadline: NIODeadline) {
        task?.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        task = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.expired(context: context)
        }
    }

    private func expired(context: ChannelHandlerContext) {
        task = nil
        guard context.channel.isActive else { return }
        if serverNotReading { return }  // paused; `read(context:)` restarts the clock
        let due = lastFrame + timeout
        if context.eventLoop.now < due {
            schedule(context: context, at: due)
            return
        }
        fired = true
        context.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
    }
}

@available(*, unavailable)
extension FrameIdleTimeoutHandler: Sendable {}
