import HorgosStore
import NIOCore
import Synchronization

/// A connection that takes its commits back on its event loop (every protocol's ``ConnectionHandler``).
protocol CommitReceiver: AnyObject {
    /// The frame submitted as `id` is committed.
    func committed(_ id: UInt32, outcome: CommitOutcome, receivedNs: UInt64)
    /// The delivery burst this connection asked to be told about (``CommitInbox/flushAfterDelivery(_:)``)
    /// is over: write the answers it produced.
    func deliveryEnded()
}

/// Hands the store's commit completions back to one event loop in batches, and has the answers they
/// produce written once per batch.
///
/// The store finishes a durable round for many frames at once, on its own thread. Scheduling one
/// event-loop task per frame costs a lock, a task and often a wake-up of the loop (an `eventfd`
/// write) per frame: with one record per frame (a fleet of vehicles at 1 record/s) that was one
/// cross-thread hop per record. The inbox queues each completion and schedules a task only when its
/// queue goes from empty to non-empty, so one task delivers everything the commits of every region
/// finished while the loop was busy. The connections whose answers were queued during that delivery
/// register with the inbox (`flushAfterDelivery`) and each writes its answers once at the end of it: one
/// write per connection per completion burst (a native session's ACKs coalesced into one, a GB/T 32960
/// unit's answers in one buffer), and no event-loop task per answer. Both protocols' connections share it.
final class CommitInbox: Sendable {
    struct Delivery: Sendable {
        let receiver: NIOLoopBound<any CommitReceiver>
        let id: UInt32
        let outcome: CommitOutcome
        /// When the frame was decoded (`NIODeadline` uptime ns), for the ACK-latency metric.
        let receivedNs: UInt64
    }

    private let eventLoop: any EventLoop
    private let pending = Mutex<[Delivery]>([])
    /// The other buffer, touched only by `drain` on the event loop: the two are swapped so an
    /// append under the lock (41 writer threads deliver here) almost never allocates.
    nonisolated(unsafe) private var spare: [Delivery] = []
    /// True while `drain` runs (event loop only).
    nonisolated(unsafe) private var delivering = false
    /// Connections with answers to write once the current delivery is done (event loop only; reused).
    nonisolated(unsafe) private var toFlush: [any CommitReceiver] = []

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Queues a completion (any thread); the connection's `committed` runs on its event loop.
    func deliver(_ delivery: Delivery) {
        let first = pending.withLock { pending in
            pending.append(delivery)
            return pending.count == 1
        }
        if first { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        eventLoop.preconditionInEventLoop()
        var batch = spare
        spare = []
        pending.withLock { swap(&$0, &batch) }
        delivering = true
        for delivery in batch {
            delivery.receiver.value.committed(delivery.id, outcome: delivery.outcome, receivedNs: delivery.receivedNs)
        }
        delivering = false
        batch.removeAll(keepingCapacity: true)
        spare = batch
        for receiver in toFlush { receiver.deliveryEnded() }
        toFlush.removeAll(keepingCapacity: true)
    }

    /// Called on the event loop by a connection with answers queued: true when the inbox is delivering and
    /// will call its `deliveryEnded` at the end of the delivery; false otherwise (the caller writes now).
    func flushAfterDelivery(_ receiver: any CommitReceiver) -> Bool {
        guard delivering else { return false }
        toFlush.append(receiver)
        return true
    }
}

/// One `CommitInbox` per event loop, created on first use and shared by that loop's connections.
public final class CommitInboxes: Sendable {
    private let inboxes = Mutex<[ObjectIdentifier: CommitInbox]>([:])

    public init() {}

    func inbox(for eventLoop: any EventLoop) -> CommitInbox {
        inboxes.withLock { inboxes in
            let key = ObjectIdentifier(eventLoop)
            if let inbox = inboxes[key] { return inbox }
            let inbox = CommitInbox(eventLoop: eventLoop)
            inboxes[key] = inbox
            return inbox
        }
    }
}
