import Foundation
import HorgosStore
import Synchronization

/// The bounded queue between the daemon's loggers and the one thread that writes their lines.
///
/// Logging must never block an event loop: a `write(2)` to stderr blocks as long as the reader (journald,
/// a pipe, a terminal) is slow or stopped. `enqueue` only appends the formatted line under a short lock
/// and returns; a dedicated thread (`horgos-log`) takes everything queued in one swap and writes it with
/// as few `write(2)` calls as it can (whole lines only, so lines never interleave).
///
/// Bounded: at most `capacityBytes` of lines wait. A line that does not fit is dropped and counted
/// (`droppedLines`); once the writer catches up it writes one warning line saying how many were
/// dropped, so a gap in the log is never silent. `flush()` waits until every queued line is written
/// (the daemon calls it before it exits; an `atexit` hook does it for `exit(3)`). Lines still queued
/// when the process dies by a signal are lost.
public final class LogLineQueue: @unchecked Sendable {
    /// The process-wide queue in front of stderr (used by `JournalLogHandler`'s stderr handlers).
    public static let standardError: LogLineQueue = {
        let format: JournalLogHandler.Format =
            JournalLogHandler.stderrIsJournal(environment: ProcessEnvironment.current) ? .journald : .plain
        let label = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "horgosd") } ?? "horgosd"
        let notice = JournalLogHandler(label: label, level: .warning, format: format, write: { _ in })
        let queue = LogLineQueue(
            capacityBytes: defaultCapacityBytes,
            dropNotice: { dropped in
                notice.formatLine(
                    level: .warning, message: "log lines dropped: the log queue was full",
                    metadata: ["dropped": "\(dropped)", "capacity_bytes": "\(defaultCapacityBytes)"])
            },
            write: { JournalLogHandler.writeToStderr($0) })
        atexit { LogLineQueue.standardError.flush() }
        return queue
    }()

    /// 1 MiB of lines: about 5,000 lines of the daemon's usual length.
    public static let defaultCapacityBytes = 1 << 20

    /// Most bytes of lines that may wait for the writer.
    public let capacityBytes: Int
    private let dropNotice: @Sendable (Int) -> String
    private let write: @Sendable (String) -> Void
    /// Guards `queued`, `queuedBytes`, `writerIdle`, `writing` (all below).
    private let condition = NSCondition()
    private var queued: [String] = []
    private var queuedBytes = 0
    private var writerIdle = false
    private var writing = false
    private let dropped = Atomic<Int>(0)
    private let droppedTotal = Atomic<Int>(0)

    /// A queue of at most `capacityBytes`; `write` runs on the queue's own thread, one batch of
    /// newline-terminated lines at a time; `dropNotice(n)` is the line written after `n` drops.
    public init(
        capacityBytes: Int, dropNotice: @escaping @Sendable (Int) -> String,
        write: @escaping @Sendable (String) -> Void
    ) {
        self.capacityBytes = capacityBytes
        self.dropNotice = dropNotice
        self.write = write
        // The thread keeps the queue alive: queues live as long as the process.
        let thread = Thread {
            ThreadName.setCurrent("horgos-log")  // what top -H and /proc/PID/task/*/comm show
            self.run()
        }
        thread.name = "horgos-log"
        thread.start()
    }

    /// Lines dropped because the queue was full, since the start.
    public var droppedLines: Int { droppedTotal.load(ordering: .relaxed) }

    /// Queues a line (newline-terminated) without waiting for any I/O; false when it was dropped.
    @discardableResult
    public func enqueue(_ line: String) -> Bool {
        let size = line.utf8.count
        condition.lock()
        guard queuedBytes + size <= capacityBytes else {
            dropped.wrappingAdd(1, ordering: .relaxed)
            droppedTotal.wrappingAdd(1, ordering: .relaxed)
            // An idle writer still has to report the drop.
            let wake = writerIdle
            if wake { writerIdle = false }
            condition.unlock()
            if wake { condition.signal() }
            return false
        }
        queued.append(line)
        queuedBytes += size
        let wake = writerIdle
        if wake { writerIdle = false }
        condition.unlock()
        if wake { condition.signal() }
        return true
    }

    /// Waits until every line queued so far has been written.
    public func flush() {
        condition.lock()
        defer { condition.unlock() }
        while !queued.isEmpty || writing || dropped.load(ordering: .relaxed) > 0 {
            if writerIdle {
                writerIdle = false
                condition.broadcast()
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
        }
    }

    private func run() {
        var batch: [String] = []
        while true {
            condition.lock()
            writing = false
            condition.broadcast()  // a `flush` may be waiting for this batch
            while queued.isEmpty && dropped.load(ordering: .relaxed) == 0 {
                writerIdle = true
                condition.wait()
            }
            writerIdle = false
            writing = true
            swap(&batch, &queued)
            queuedBytes = 0
            // Lines are dropped only while the queue is full, so these drops came after this batch's
            // lines: the notice follows them.
            let lost = dropped.exchange(0, ordering: .relaxed)
            condition.unlock()
            writeBatch(batch)
            batch.removeAll(keepingCapacity: true)
            if lost > 0 { write(dropNotice(lost)) }
        }
    }

    /// Writes the lines in chunks of at most 64 KiB (one `write` call each, whole lines only).
    private func writeBatch(_ lines: [String]) {
        var chunk = ""
        for line in lines {
            if !chunk.isEmpty && chunk.utf8.count + line.utf8.count > 65_536 {
                write(chunk)
                chunk = ""
            }
            chunk += line
        }
        if !chunk.isEmpty { write(chunk) }
    }
}
