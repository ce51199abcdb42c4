import HorgosProxyProtocol
import NIOCore

/// Reads the PROXY protocol v2 header a load balancer (HAProxy `send-proxy-v2`) puts before the TLS
/// bytes, hands it to `onHeader`, then removes itself so the stream continues unchanged.
///
/// Put it first in an accepted channel's pipeline, alone: `onHeader` runs on the event loop with the
/// parsed header, decides admission from the client's address (per-address limits) and adds the
/// real pipeline (TLS, ...) behind this handler; the bytes after the header are then passed on and
/// this handler leaves. Anything else (a bad signature, a truncated or over-long header, no header
/// within `timeout`, the connection closing first) closes the connection and calls `onRejected`:
/// no byte of it ever reaches TLS. One line adds it to any listener's child initializer:
///
/// ```swift
/// try channel.pipeline.syncOperations.addHandler(ProxyProtocolHandler(timeout: t, onHeader: { channel, header in
///     try addTheRealPipeline(channel, clientAddress: header.clientIPAddress)
/// }))
/// ```
///
/// Limits: at most `parser.maxLength` bytes are buffered (1 KiB by default), for at most `timeout`.
public final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    /// Called once with the header; throwing (for example a refused address) closes the connection.
    public typealias HeaderCallback = (any Channel, ProxyHeader) throws -> Void

    private enum State {
        case waiting(ByteBuffer?)
        case forwarding
        case closed
    }

    private let parser: ProxyHeaderParser
    private let timeout: TimeAmount
    private let onHeader: HeaderCallback
    private let onRejected: @Sendable (ProxyHeaderError) -> Void
    private var state = State.waiting(nil)
    private var timer: Scheduled<Void>?

    /// A handler that waits at most `timeout` for a header of at most `parser.maxLength` bytes.
    public init(
        parser: ProxyHeaderParser = ProxyHeaderParser(), timeout: TimeAmount,
        onHeader: @escaping HeaderCallback,
        onRejected: @escaping @Sendable (ProxyHeaderError) -> Void = { _ in }
    ) {
        self.parser = parser
        self.timeout = timeout
        self.onHeader = onHeader
        self.onRejected = onRejected
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.reject(.truncated(received: handler.bufferedBytes), context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private var bufferedBytes: Int {
        if case .waiting(let buffer) = state { buffer?.readableBytes ?? 0 } else { 0 }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        switch state {
        case .forwarding:
            context.fireChannelRead(data)
            return
        case .closed:
            return
        case .waiting(var buffered):
            if buffered == nil {
                buffered = incoming
            } else {
                buffered!.writeBuffer(&incoming)
            }
            var buffer = buffered!
            let scan: Result<ProxyHeaderScan, ProxyHeaderError> = buffer.withUnsafeReadableBytes { raw in
                do throws(ProxyHeaderError) {
                    return .success(try parser.parse(raw))
                } catch {
                    return .failure(error)
                }
            }
            switch scan {
            case .failure(let error):
                reject(error, context: context)
            case .success(.needMoreBytes(let needed)):
                // The parser decides the bound from the fixed part; this guards a prefix that never ends.
                if buffer.readableBytes >= parser.maxLength && needed == nil {
                    reject(.headerTooLong(length: buffer.readableBytes, limit: parser.maxLength), context: context)
                } else {
                    state = .waiting(buffer)
                }
            case .success(.header(let header)):
                timer?.cancel()
                timer = nil
                state = .forwarding
                do {
                    try onHeader(context.channel, header)
                } catch {
                    state = .closed
                    context.close(promise: nil)
                    return
                }
                buffer.moveReaderIndex(forwardBy: header.length)
                if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            }
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding = state { context.fireChannelReadComplete() }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, case .waiting = state {
            // The listener drains before this connection said who it is for: close it, uncounted.
            state = .closed
            timer?.cancel()
            timer = nil
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if case .waiting = state {
            reject(.truncated(received: bufferedBytes), context: context)
        }
        context.fireChannelInactive()
    }

    private func reject(_ error: ProxyHeaderError, context: ChannelHandlerContext) {
        guard case .waiting = state else { return }
        state = .closed
        timer?.cancel()
        timer = nil
        onRejected(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ProxyProtocolHandler: Sendable {}
