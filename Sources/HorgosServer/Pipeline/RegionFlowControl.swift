import Synchronization

/// Byte accounting of one region's queue, with high and low watermarks for backpressure.
///
/// Sessions add a frame's bytes when they queue it and the commit completions remove them. A
/// session that finds the queue above the high watermark stops reading its socket and registers a
/// resume callback; when the queue falls below the low watermark every waiting session is resumed.
/// The gap between the marks keeps connections from flapping.
///
/// The per-frame path takes no lock: `add` and `remove` are one atomic add each (plus one atomic load
/// of the waiter count in `remove`). The mutex guards only the waiters, touched when a session has to
/// stop reading and when waiting sessions are resumed.
public final class RegionFlowControl: Sendable {
    public let region: String
    public let highWatermark: Int
    public let lowWatermark: Int

    private let bytes = Atomic<Int>(0)
    /// Sessions registered (or registering) in `waiters`; read by `remove` without the lock.
    private let waiterCount = Atomic<Int>(0)
    private let waiters = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])

    public init(region: String, highWatermark: Int, lowWatermark: Int) {
        precondition(lowWatermark < highWatermark, "the low watermark must be below the high watermark")
        self.region = region
        self.highWatermark = highWatermark
        self.lowWatermark = lowWatermark
    }

    /// Bytes queued for the writer and not yet committed.
    public var queuedBytes: Int { bytes.load(ordering: .sequentiallyConsistent) }

    /// Sessions waiting for room.
    public var waitingSessions: Int { waiters.withLock { $0.count } }

    /// Counts `bytes` as queued; returns true when the queue is now above the high watermark.
    public func add(_ count: Int) -> Bool {
        bytes.wrappingAdd(count, ordering: .sequentiallyConsistent).newValue > highWatermark
    }

    /// Registers `resume` to be called once the queue falls below the low watermark.
    ///
    /// Returns false (and does not register) when the queue is already below it: keep reading.
    public func waitForRoom(_ id: ObjectIdentifier, resume: @escaping @Sendable () -> Void) -> Bool {
        waiters.withLock { waiters in
            // Announce the waiter before reading the queue: a `remove` that brings the queue below the
            // low mark after this read then sees the count and takes the lock (Dekker-style, both
            // sequentially consistent), so no wake-up is lost.
            waiterCount.wrappingAdd(1, ordering: .sequentiallyConsistent)
            guard bytes.load(ordering: .sequentiallyConsistent) > lowWatermark else {
                waiterCount.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                return false
            }
            if waiters.updateValue(resume, forKey: id) != nil {
                waiterCount.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            }
            return true
        }
    }

    /// Forgets a waiting session (it closed).
    public func cancelWait(_ id: ObjectIdentifier) {
        guard waiterCount.load(ordering: .sequentiallyConsistent) > 0 else { return }
        waiters.withLock { waiters in
            if waiters.removeValue(forKey: id) != nil {
                waiterCount.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            }
        }
    }

    /// Counts `bytes` as committed; resumes the waiting sessions when the queue drops below the low mark.
    public func remove(_ count: Int) {
        let now = bytes.wrappingSubtract(count, ordering: .sequentiallyConsistent).newValue
        guard now <= lowWatermark, waiterCount.load(ordering: .sequentiallyConsistent) > 0 else { return }
        let resumed: [@Sendable () -> Void] = waiters.withLock { waiters in
            guard bytes.load(ordering: .sequentiallyConsistent) <= lowWatermark, !waiters.isEmpty else { return [] }
            let resumed = Array(waiters.values)
            waiterCount.wrappingSubtract(waiters.count, ordering: .sequentiallyConsistent)
            waiters.removeAll(keepingCapacity: true)
            return resumed
        }
        for resume in resumed { resume() }
    }
}
