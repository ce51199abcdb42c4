import HorgosStore
import NIOCore
import Synchronization

/// Hands the region writers' commit completions back to one event loop in batches.
///
/// A writer finishes a transaction for many frames at once, on its own thread. Scheduling one
/// event-loop task per frame costs a lock, a task and often a wake-up of the loop (an `eventfd`
/// write) per frame: with one record per frame (a fleet of vehicles at 1 record/s) that was one
/// cross-thread hop per record. The inbox queues each completion and schedules a task only when its
/// queue goes from empty to non-empty, so one task delivers everything the commits of every region
/// finished while the loop was busy.
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
        for delivery in batch {
            delivery.handler.value.committed(
                delivery.sequence, bytes: delivery.bytes, outcome: delivery.outcome, receivedNs: delivery.receivedNs)
        }
        batch.removeAll(keepingCapacity: true)
        spare = batch
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
