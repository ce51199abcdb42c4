import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The periodic check of the files the appliers write: every `integrityCheckIntervalMs`, each region's
/// current day file and registry get a `PRAGMA quick_check` on a separate read-only connection, one
/// region at a time, spread evenly over the interval, on a thread of its own (`horgos-check`), so no
/// applier waits for it.
///
/// Why: SQLite reports damage only when it reads a damaged page. An append-only day file whose old
/// pages were overwritten (a disk, a controller or a stray process) keeps taking appends while every
/// reader of those pages fails; the writer's own page cache hides it. The check reads through the
/// operating system's cache, as readers do, and a damaged file is moved aside by the region's applier
/// at its next turn (`RegionWriter.requestQuarantine`), exactly as after a write SQLite reported
/// corrupt. Cost: quick_check is CPU-bound, about 130 MiB of file per CPU-second (BENCHMARKS.md), so the
/// thread keeps itself to `cpuShare` of one core: after a check that took d seconds of its CPU time
/// (CLOCK_THREAD_CPUTIME_ID) it waits at least d / cpuShare - d before the next. A region is checked every
/// `integrityCheckIntervalMs`, or, when the current day files are too large for that within the budget, as
/// often as the budget allows (every region's check time / cpuShare); that bounds how long damage goes
/// unnoticed.
final class IntegrityChecker: @unchecked Sendable {
    /// The share of one core the checks may use.
    static let cpuShare = 0.05

    private let writers: [RegionWriter]
    private let configuration: StoreConfiguration
    private let wake: @Sendable ([RegionWriter]) -> Void
    private let condition = NSCondition()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private let running: Bool

    init(
        writers: [RegionWriter], configuration: StoreConfiguration, wake: @escaping @Sendable ([RegionWriter]) -> Void
    ) {
        self.writers = writers.sorted { $0.region < $1.region }
        self.configuration = configuration
        self.wake = wake
        running = configuration.integrityCheckIntervalMs > 0 && !writers.isEmpty
        guard running else { return }
        let thread = Thread { [self] in
            ThreadName.setCurrent("horgos-check")
            self.run()
        }
        thread.name = "horgos-check"
        thread.start()
    }

    /// Stops the thread (a check under way finishes first).
    func stop() {
        guard running else { return }
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
        finished.signal()
    }

    /// The calling thread's CPU time in nanoseconds.
    static func threadCPUNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private func run() {
        let step = Double(configuration.integrityCheckIntervalMs) / 1000 / Double(writers.count)
        var index = 0
        var wait = step
        while true {
            condition.lock()
            if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: wait)) }
            let stop = stopping
            condition.unlock()
            if stop { break }
            let seconds = check(writers[index])
            index = (index + 1) % writers.count
            wait = max(step, seconds / Self.cpuShare - seconds)
        }
        finished.signal()
    }

    /// Checks one region's registry and current day file; asks its applier to quarantine what failed.
    /// Returns the CPU seconds it took.
    @discardableResult
    func check(_ writer: RegionWriter) -> Double {
        let started = Self.threadCPUNs()
        let nowMs = configuration.clock()
        let directory = StoreFiles.regionDirectory(configuration.stateDirectory, writer.region)
        var damaged: [String] = []
        for name in [StoreFiles.registryFileName, UTCDay(epochMs: nowMs).partitionFileName]
        where StoreFiles.exists("\(directory)/\(name)") {
            if Quarantine.check("\(directory)/\(name)") == .damaged {
                configuration.log(.error, "\(writer.region): the periodic check found \(name) damaged (quick_check)")
                damaged.append(name)
            }
        }
        let seconds = Double(Self.threadCPUNs() - started) / 1e9
        writer.updateStatistics { s in
            s.integrityChecks += 1
            s.lastIntegrityCheckMs = nowMs
            s.lastIntegrityCheckSeconds = seconds
        }
        guard !damaged.isEmpty else { return seconds }
        for name in damaged { writer.requestQuarantine(name) }
        wake([writer])
        return seconds
    }
}
