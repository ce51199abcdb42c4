import Foundation
import HorgosWire
import Synchronization

/// The applier threads: a few (default one per core), each applying the journal entries of a fixed
/// set of regions (region i goes to thread i mod n), so 41 regions do not need 41 threads and a
/// region's fault never blocks another thread's regions. A failing region on a shared thread waits out
/// its backoff without holding the thread.
final class ApplierPool: Sendable {
    private let threads: [ApplierThread]
    /// Which thread applies a region.
    private let threadOfRegion: [Region: Int]

    init(appliers: [RegionApplier], count: Int, journal: Journal) {
        let n = max(1, min(count, appliers.count))
        var groups = [[RegionApplier]](repeating: [], count: n)
        var map: [Region: Int] = [:]
        for (index, applier) in appliers.sorted(by: { $0.writer.region < $1.writer.region }).enumerated() {
            groups[index % n].append(applier)
            map[applier.writer.region] = index % n
        }
        threads = groups.enumerated().map { ApplierThread(index: $0.offset, appliers: $0.element, journal: journal) }
        threadOfRegion = map
    }

    /// Wakes the threads of these regions (they got entries).
    func notify(_ writers: [RegionWriter]) {
        var woken = Set<Int>()
        for writer in writers {
            if let index = threadOfRegion[writer.region], woken.insert(index).inserted { threads[index].wake() }
        }
    }

    /// Applies everything delivered, checkpoints and closes the files (degraded regions retry until
    /// the deadline), and waits for every thread.
    func stop(deadlineNs: UInt64) {
        for thread in threads { thread.stop(deadlineNs: deadlineNs) }
        for thread in threads { thread.waitUntilFinished() }
    }
}

/// One applier thread and its regions.
final class ApplierThread: @unchecked Sendable {
    private let appliers: [RegionApplier]
    private let journal: Journal
    private let condition = NSCondition()
    private var signaled = false
    private var stopping = false
    private var deadlineNs: UInt64 = .max
    private let finished = DispatchSemaphore(value: 0)

    init(index: Int, appliers: [RegionApplier], journal: Journal) {
        self.appliers = appliers
        self.journal = journal
        let thread = Thread { [self] in
            ThreadName.setCurrent("horgos-apply-\(index)")
            self.run()
        }
        thread.name = "horgos-apply-\(index)"
        thread.start()
    }

    func wake() {
        condition.lock()
        signaled = true
        condition.signal()
        condition.unlock()
    }

    func stop(deadlineNs: UInt64) {
        condition.lock()
        stopping = true
        self.deadlineNs = deadlineNs
        condition.signal()
        condition.unlock()
    }

    func waitUntilFinished() {
        finished.wait()
        finished.signal()
    }

    private func run() {
        while true {
            WriterTestHooks.sleepWhileWedged()
            condition.lock()
            let stoppingNow = stopping
            let deadline = deadlineNs
            condition.unlock()
            let now = StoreClock.monotonicNs()
            var next = now + 1_000_000_000
            let durableBefore = appliers.map { $0.writer.durableLSN.load(ordering: .relaxed) }
            for applier in appliers { next = min(next, applier.turn(nowNs: now, stopping: stoppingNow)) }
            let advanced = zip(appliers, durableBefore).contains { $0.writer.durableLSN.load(ordering: .relaxed) > $1 }
            if advanced { journal.retire() }
            journal.recordApplied()
            if stoppingNow && (!appliers.contains { $0.hasPending } || now >= deadline) { break }
            condition.lock()
            if !signaled && !stopping {
                let waitNs = next > now ? next - now : 0
                if waitNs > 0 { _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitNs) / 1e9)) }
            } else if stoppingNow && !signaled {
                // Stopping with a degraded region: pace the retries.
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.02))
            }
            signaled = false
            condition.unlock()
        }
        for applier in appliers {
            applier.close()
            applier.writer.setState(.stopped)
        }
        finished.signal()
    }
}
