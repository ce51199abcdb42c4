import HorgosWireNIO
import NIOCore
import Synchronization

/// The global bound of bytes held for clients (`limits.max_buffered_bytes`): the bytes of partial
/// frames waiting in the connections' decoders, plus the receive buffers that queued frames (handed to
/// storage, not yet committed) keep alive, counted whole.
///
/// Above the bound, connections that hold part of a frame are not read any more until the total drops
/// below the bound again; a connection holding no partial frame is still read (a healthy vehicle's next
/// frame gets in, so the total can pass the bound by at most one read per such connection). A connection
/// held back this way keeps its idle clock running (it had its chance to complete the frame), so
/// clients that trickle partial frames are closed by the idle timeout and give their bytes back.
public final class BufferedBytesBudget: Sendable {
    private let limitBytes: Atomic<Int>
    private let usedBytes = Atomic<Int>(0)
    private let waiters = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])

    /// A budget of `limit` bytes.
    public init(limit: Int) {
        self.limitBytes = Atomic(limit)
    }

    /// The bound (reloadable).
    public var limit: Int {
        get { limitBytes.load(ordering: .relaxed) }
        set {
            limitBytes.store(newValue, ordering: .relaxed)
            if !isOver { wakeAll() }
        }
    }

    /// Bytes counted now.
    public var used: Int { usedBytes.load(ordering: .relaxed) }

    /// True while the count is at or above the bound.
    public var isOver: Bool { used >= limit }

    /// Counts `bytes` more.
    public func add(_ bytes: Int) {
        usedBytes.wrappingAdd(bytes, ordering: .relaxed)
    }

    /// Counts `bytes` less; wakes the held connections when the count drops below the bound.
    public func remove(_ bytes: Int) {
        let now = usedBytes.wrappingSubtract(bytes, ordering: .relaxed).newValue
        if now < limit && now + bytes >= limit { wakeAll() }
    }

    /// Calls `resume` (once) when the count drops below the bound; false (nothing registered) if it is
    /// below already.
    func wait(_ id: ObjectIdentifier, resume: @escaping @Sendable () -> Void) -> Bool {
        waiters.withLock { $0[id] = resume }
        if !isOver {
            cancel(id)
            return false
        }
        return true
    }

    func cancel(_ id: ObjectIdentifier) {
        _ = waiters.withLock { $0.removeValue(forKey: id) }
    }

    private func wakeAll() {
        let all = waiters.withLock { waiters in
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        for resume in all { resume() }
    }
}

/// Counts a connection's partial-frame bytes against the ``BufferedBytesBudget`` and holds its reads
/// while the budget is over and this connection holds part of a frame.
///
/// Sits between the TLS handler and the frame decoder (it sees the plaintext the decoder will buffer);
/// ``FramedBytesHandler`` behind the decoder tells it which bytes became complete frames.
public final class PartialFrameBudgetHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = NIOAny

    private let budget: BufferedBytesBudget
    /// Plaintext bytes handed to the decoder and not yet part of a complete frame.
    private(set) var held = 0
    private var readPending = false
    private var waiting = false
    private var context: ChannelHandlerContext?

    public init(budget: BufferedBytesBudget) {
        self.budget = budget
    }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    public func handlerRemoved(context: ChannelHandlerContext) {
        release()
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytes
        held += bytes
        budget.add(bytes)
        context.fireChannelRead(data)
    }

    /// `bytes` of what this connection held became a complete frame (decoded).
    func framed(_ bytes: Int) {
        let released = min(bytes, held)
        held -= released
        budget.remove(released)
    }

    public func read(context: ChannelHandlerContext) {
        guard held > 0, budget.isOver else {
            context.read()
            return
        }
        readPending = true
        guard !waiting else { return }
        waiting = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        if !budget.wait(ObjectIdentifier(self), resume: { loop.execute { bound.value.resume() } }) {
            resume()
        }
    }

    private func resume() {
        waiting = false
        guard readPending, let context else { return }
        readPending = false
        read(context: context)
    }

    private func release() {
        if waiting { budget.cancel(ObjectIdentifier(self)) }
        waiting = false
        budget.remove(held)
        held = 0
    }
}

@available(*, unavailable)
extension PartialFrameBudgetHandler: Sendable {}

/// Behind the frame decoder: reports each complete frame's bytes to the connection's
/// ``PartialFrameBudgetHandler`` (they are no longer a partial frame).
public final class FramedBytesHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = InboundFrame
    public typealias InboundOut = InboundFrame

    private let partial: PartialFrameBudgetHandler

    public init(partial: PartialFrameBudgetHandler) {
        self.partial = partial
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partial.framed(unwrapInboundIn(data).header.frameLength)
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension FramedBytesHandler: Sendable {}
