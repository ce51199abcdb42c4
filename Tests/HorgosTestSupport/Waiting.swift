import Foundation
import Synchronization

/// Waits for `condition` to hold, polling every `pollMilliseconds` without blocking a thread of Swift's
/// cooperative pool (which has one thread per core: two here, shared by every suite of the process).
/// Returns true once it holds, false when `seconds` passed first. The bound is generous on purpose: a wait in
/// a test is for a condition, and only a broken system reaches the bound, however loaded the machine is.
public func eventually(
    seconds: Double = 30, pollMilliseconds: Int = 5, _ condition: () throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(seconds * 1000))
    while true {
        if try condition() { return true }
        if clock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(pollMilliseconds))
    }
}

/// The async form of `eventually` for conditions that must await.
public func eventually(
    seconds: Double = 30, pollMilliseconds: Int = 5, _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(seconds * 1000))
    while true {
        if try await condition() { return true }
        if clock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(pollMilliseconds))
    }
}

/// Runs blocking work (a child process's `waitUntilExit`, a semaphore, a blocking read) on a thread of its
/// own and awaits it. Swift's cooperative pool has one thread per core (two here): blocking them stalls every
/// other suite's clients, and daemons' timeouts then fire on clients that were merely not scheduled.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A count that concurrent tasks and threads share (a class, so escaping closures can capture it).
public final class SharedCounter: Sendable {
    private let storage = Atomic<Int>(0)

    public init() {}

    public func increment() { storage.add(1, ordering: .relaxed) }

    public var value: Int { storage.load(ordering: .relaxed) }
}
