import Synchronization

/// Byte accounting of one region's queue, with high and low watermarks for backpressure.
///
/// Sessions add a frame's bytes when they queue it and the writer's completion removes them. A
/// session that finds the queue above the high watermark stops reading its socket and registers a
/// resume callback; when the queue falls below the low watermark every waiting session is resumed.
/// The gap between the marks keeps connections from flapping.
public final class RegionFlowControl: Sendable {
    public let region: String
    public let highWatermark: Int
    public let lowWatermark: Int

    struct State {
        var queuedBytes = 0
        var waiters: [ObjectIdentifier: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    public init(region: String, highWatermark: Int, lowWatermark: Int) {
        precondition(lowWatermark < highWatermark, "the low watermark must be below the high watermark")
        self.region = region
        self.highWatermark = highWatermark
        self.lowWatermark = lowWatermark
    }

    /// Bytes queued for the writer and not yet committed.
    public var queuedBytes: Int { state.withLock { $0.queuedBytes } }

    /// Sessions waiting for room.
    public var waitingSessions: Int { state.withLock { $0.waiters.count } }

    /// Counts `bytes` as queued; returns true when the queue is now above the high watermark.
    public func add(_ bytes: Int) -> Bool {
        state.withLock { state in
            state.queuedBytes += bytes
            return state.queuedBytes > highWatermark
        }
    }

    /// Registers `resume` to be called once the queue falls below the low watermark.
    ///
    /// Returns false (and does not register) when the queue is already below it: keep reading.
    public func waitForRoom(_ id: ObjectIdentifier, resume: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard state.queuedBytes > lowWatermark else { return false }
            state.waiters[id] = resume
            return true
        }
    }

    /// Forgets a waiting session (it closed).
    public func cancelWait(_ id: ObjectIdentifier) {
        _ = state.withLock { $0.waiters.removeValue(forKey: id) }
    }

    /// Counts `bytes` as committed; resumes the waiting sessions when the queue drops below the low mark.
    public func remove(_ bytes: Int) {
        let resumed: [@Sendable () -> Void] = state.withLock { state in
            state.queuedBytes -= bytes
            guard state.queuedBytes <= lowWatermark, !state.waiters.isEmpty else { return [] }
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll(keepingCapacity: true)
            return waiters
        }
        for resume in resumed { resume() }
    }
}
