import NIOCore

/// Drives the periodic readings of every unit on one event loop from a single timer.
///
/// With one `RepeatedTask` per unit, 10,000 units at one reading a second cost 10,000 reschedules a
/// second in NIO's timer heap (each a sift of a 5,000-task heap per loop, copying and retaining
/// every task it moves): the load run's profile of the simulator showed a quarter of its CPU in
/// `swift_retain`/`swift_release`, a third of that from those copies. The wheel keeps units in
/// `slotMs` slots by phase and fires the slots that fell due since the last tick, by the clock, so
/// the period stays exact however late a tick runs. Confined to its event loop.
final class ReportWheel {
    let eventLoop: any EventLoop
    let slotMs: Int64
    private var slots: [[SimulatedUnit]]
    private var slotOf: [ObjectIdentifier: Int] = [:]
    private var started: NIODeadline?
    private var firedTicks: Int64 = 0
    private var task: RepeatedTask?

    /// A wheel for units reporting every `intervalMs` (> 0).
    init(eventLoop: any EventLoop, intervalMs: Int, slotMs: Int64 = 10) {
        self.eventLoop = eventLoop
        self.slotMs = slotMs
        self.slots = Array(repeating: [], count: max(1, Int((Int64(intervalMs) + slotMs - 1) / slotMs)))
    }

    /// Adds `unit` at `phase` (0 ..< 1 of the interval): its first reading is up to one interval away.
    func add(_ unit: SimulatedUnit, phase: Double) {
        let id = ObjectIdentifier(unit)
        guard slotOf[id] == nil else { return }
        let slot = min(slots.count - 1, max(0, Int(phase * Double(slots.count))))
        slots[slot].append(unit)
        slotOf[id] = slot
        startIfNeeded()
    }

    func remove(_ unit: SimulatedUnit) {
        guard let slot = slotOf.removeValue(forKey: ObjectIdentifier(unit)) else { return }
        slots[slot].removeAll { $0 === unit }
        if slotOf.isEmpty {
            task?.cancel()
            task = nil
            started = nil
        }
    }

    private func startIfNeeded() {
        guard task == nil else { return }
        let now = NIODeadline.now()
        // Continue the slot sequence where it was (units keep their phase across a restart).
        started = now - .milliseconds(firedTicks * slotMs)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        task = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(slotMs), delay: .milliseconds(slotMs)) { _ in
            loopBound.value.tick()
        }
    }

    private func tick() {
        guard let started else { return }
        let due = (NIODeadline.now() - started).nanoseconds / (slotMs * 1_000_000)
        while firedTicks < due {
            let slot = Int(firedTicks % Int64(slots.count))
            firedTicks += 1
            for unit in slots[slot] { unit.reportTick() }
        }
    }
}
