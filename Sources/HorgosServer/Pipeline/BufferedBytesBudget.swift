import NIOCore
import Synchronization

/// The global bound of bytes held for clients (`limits.max_buffered_bytes`): the buffers that partial
/// frames occupy in the connections' decoders (see ``PartialFrameBudgetHandler``), plus the receive
/// buffers that queued frames (handed to storage, not yet committed) keep alive, counted whole.
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

/// Counts the buffer a connection's partial frame pins against the ``BufferedBytesBudget`` and holds its
/// reads while the budget is over and this connection holds part of a frame.
///
/// Sits between the TLS handler and the frame decoder (it sees the plaintext the decoder will buffer); the
/// ``ConnectionHandler`` behind the decoder tells it which bytes became complete frames (every protocol's
/// decoder reports what each decoded unit consumed).
///
/// What is counted is memory, not payload: NIO-SSL hands over its 32 KiB read buffer even for a
/// 2,900-byte record, and the decoder keeps that buffer while a frame is partial. So a read the decoder
/// would adopt (it holds nothing yet) that fills less than half its buffer is passed on as a right-sized
/// copy, and the connection is charged the capacity the decoder's buffer can have: the adopted buffer's,
/// then the power of two its appends grow it to (never less while a frame is partial, since the decoder
/// does not shrink it). A read armed while a frame is partial reserves the current charge again (the
/// buffer can double in it), so sessions armed together when the bound is crossed cannot take the total
/// past it. Measured with the real daemon (`SlowInputEndToEndTests`, Deploy/SCALING.md):
/// counting payload bytes, 2,000 trickling sessions held 37 MiB by the count but 96 MiB resident.
public final class PartialFrameBudgetHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = NIOAny

    private let budget: BufferedBytesBudget
    /// Plaintext bytes handed to the decoder and not yet part of a complete frame.
    private(set) var held = 0
    /// What this connection counts against the budget now: the capacity of the decoder's buffer.
    private(set) var charged = 0
    /// Counted for the read armed while part of a frame is held (the buffer may double in it).
    private var reserved = 0
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
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readableBytes
        let pinned: Int
        if held == 0 {
            // The decoder adopts this buffer as its own; do not let it keep a mostly empty one.
            if buffer.capacity >= 2 * bytes && bytes > 0 {
                var copy = context.channel.allocator.buffer(capacity: bytes)
                copy.writeBuffer(&buffer)
                buffer = copy
            }
            pinned = buffer.capacity
        } else {
            // The decoder appends to its buffer, which grows to the next power of two.
            pinned = Self.grownCapacity(held + bytes)
        }
        held += bytes
        charge(max(charged, pinned))
        unreserve()
        context.fireChannelRead(wrapInboundOut(buffer))
    }

    /// `bytes` of what this connection held became a complete frame (decoded). The decoder keeps its
    /// buffer while part of a frame remains, so the charge drops only when nothing is held.
    func framed(_ bytes: Int) {
        held -= min(bytes, held)
        if held == 0 { charge(0) }
    }

    /// The armed read arrived (or the connection ended): its reservation is replaced by the charge.
    private func unreserve() {
        guard reserved > 0 else { return }
        budget.remove(reserved)
        reserved = 0
    }

    private func charge(_ bytes: Int) {
        if bytes > charged {
            budget.add(bytes - charged)
        } else if bytes < charged {
            budget.remove(charged - bytes)
        }
        charged = bytes
    }

    /// The capacity a byte buffer has after appends brought it to `bytes` (NIO grows to powers of two).
    static func grownCapacity(_ bytes: Int) -> Int {
        bytes <= 1 ? bytes : 1 << (Int.bitWidth - (bytes - 1).leadingZeroBitCount)
    }

    public func read(context: ChannelHandlerContext) {
        guard held > 0 else {
            context.read()
            return
        }
        guard budget.isOver else {
            // The read armed now can double the decoder's buffer before the count rises. Count that up
            // front: otherwise every session armed when the bound is crossed grows once more past it.
            if reserved == 0 {
                reserved = charged
                budget.add(reserved)
            }
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
        held = 0
        charge(0)
        unreserve()
    }
}

@available(*, unavailable)
extension PartialFrameBudgetHandler: Sendable {}
