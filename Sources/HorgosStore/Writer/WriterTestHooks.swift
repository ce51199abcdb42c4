import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Test-only fault injection for the region writers. Never set in production: `horgosd` sets it only
/// on SIGUSR2 when started with `HORGOS_TEST_HOOKS=1` (Deploy/systemd-nspawn-test.sh, RUNBOOK.md).
///
/// While `wedged` is set, the journal writer and every applier loop sleep at the top of their turn
/// without marking progress,
/// like a writer hung in a system call: nothing more commits or is acknowledged, and the daemon stops
/// sending WATCHDOG=1 so that systemd kills and restarts it. What was acknowledged before stays
/// committed.
public enum WriterTestHooks {
    /// Process-wide; lock-free, so setting it is async-signal-safe.
    public static let wedged = Atomic<Bool>(false)

    /// Wedges every region writer of the process (for good: the process is meant to be killed).
    public static func wedgeWriters() {
        wedged.store(true, ordering: .relaxed)
    }

    /// Called by the writer loop: returns at once unless wedged.
    static func sleepWhileWedged() {
        while wedged.load(ordering: .relaxed) {
            usleep(100_000)
        }
    }
}
