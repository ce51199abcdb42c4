/// The frames of one connection handed to storage and not yet committed, by submission id.
///
/// Ids are given out in order; commits may come back in any order. A ring of slots indexed by id (grown
/// by doubling when more frames are in flight than it holds), so a frame costs no allocation once the ring
/// has grown to the connection's window.
struct InFlightFrames<Pending> {
    private var slots: [Pending?]
    /// The oldest id that may still be in flight.
    private var oldest: UInt32 = 0
    /// The next id to give out.
    private var next: UInt32 = 0
    /// Frames in flight.
    private(set) var count = 0

    /// A ring of `capacity` slots to start with (rounded up to a power of two).
    init(capacity: Int = 16) {
        var size = 1
        while size < capacity { size <<= 1 }
        slots = Array(repeating: nil, count: size)
    }

    var isEmpty: Bool { count == 0 }

    /// Records a frame in flight; returns its id.
    mutating func insert(_ pending: Pending) -> UInt32 {
        if Int(next &- oldest) == slots.count { grow() }
        let id = next
        slots[index(id)] = pending
        next &+= 1
        count += 1
        return id
    }

    /// The frame `id`, now committed (nil when it is not in flight).
    mutating func remove(_ id: UInt32) -> Pending? {
        guard id &- oldest < next &- oldest else { return nil }
        let slot = index(id)
        guard let pending = slots[slot] else { return nil }
        slots[slot] = nil
        count -= 1
        while oldest != next && slots[index(oldest)] == nil { oldest &+= 1 }
        return pending
    }

    /// Every frame still in flight, oldest first, and the ring emptied.
    mutating func removeAll() -> [Pending] {
        var all: [Pending] = []
        while oldest != next {
            if let pending = slots[index(oldest)] { all.append(pending) }
            slots[index(oldest)] = nil
            oldest &+= 1
        }
        count = 0
        return all
    }

    private func index(_ id: UInt32) -> Int { Int(id & UInt32(slots.count - 1)) }

    private mutating func grow() {
        var larger = [Pending?](repeating: nil, count: slots.count * 2)
        var id = oldest
        while id != next {
            larger[Int(id & UInt32(larger.count - 1))] = slots[index(id)]
            id &+= 1
        }
        slots = larger
    }
}
