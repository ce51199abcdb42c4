import HorgosStore
import NIOCore
import Synchronization

/// Hands the store's commit completions back to one event loop in batches, and writes the ACKs they
/// produce once per batch.
///
/// The store finishes a durable round for many frames at once, on its own thread. Scheduling one
/// event-loop task per frame costs a lock, a task and often a wake-up of the loop (an `eventfd`
/// write) per frame: with one record per frame (a fleet of vehicles at 1 record/s) that was one
/// cross-thread hop per record. The inbox queues each completion and schedules a task only when its
/// queue goes from empty to non-empty, so one task delivers everything the commits of every region
/// finished while the loop was busy. The sessions whose cumulative ACK advanced during that delivery
/// register with the inbox (`flushAfterDelivery`) and each writes one ACK at the end of it: one ACK
/// write per session per completion burst, and no event-loop task per ACK.
final class CommitInbox: Sendable {
    struct Delivery: Sendable {
        let handler: NIOLoopBound<SessionHandler>
        let sequence: UInt32
        let bytes: Int
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
    /// Sessions with an ACK to write once the current delivery is done (event loop only; reused).
    nonisolated(unsafe) private var acksToFlush: [SessionHandler] = []

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Queues a completion (any thread); the handler's `committed` runs on its event loop.
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
            delivery.handler.value.committed(
                delivery.sequence, bytes: delivery.bytes, outcome: delivery.outcome, receivedNs: delivery.receivedNs)
        }
        delivering = false
        batch.removeAll(keepingCapacity: true)
        spare = batch
        for handler in acksToFlush { handler.flushAck() }
        acksToFlush.removeAll(keepingCapacity: true)
    }

    /// Called on the event loop by a session whose ACK is pending: true when the inbox is delivering
    /// and will call its `flushAck` at the end of the delivery; false otherwise (the caller flushes).
    func flushAfterDelivery(_ handler: SessionHandler) -> Bool {
        guard delivering else { return false }
        acksToFlush.append(handler)
        return true
    }
}

/// One `CommitInbox` per event loop, created on first use and shared by that loop's sessions.
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
