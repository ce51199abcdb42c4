import Foundation
import Logging
import HorgosTestSupport
import Synchronization
import Testing

@testable import HorgosServer

/// What the log writer thread wrote, and a gate that holds it inside `write` (a stalled journald).
final class GatedLogSink: Sendable {
    let written = Mutex<[String]>([])
    /// Set once the writer thread is inside `write` (held at the gate).
    let entered = Atomic<Bool>(false)
    let gate = DispatchSemaphore(value: 0)
    let holdFirst = Atomic<Bool>(true)

    func write(_ text: String) {
        if holdFirst.exchange(false, ordering: .relaxed) {
            entered.store(true, ordering: .releasing)
            gate.wait()  // on the log writer's own thread, not the test's
        }
        written.withLock { $0.append(text) }
    }

    var lines: [String] {
        written.withLock { $0 }.joined().split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }
}

@Suite struct LogLineQueueTests {
    @Test func linesAreWrittenInOrderByTheWriterThread() async throws {
        let sink = GatedLogSink()
        sink.holdFirst.store(false, ordering: .relaxed)
        let queue = LogLineQueue(capacityBytes: 1 << 16, dropNotice: { "dropped \($0)\n" }, write: sink.write)
        for index in 0..<500 { #expect(queue.enqueue("line \(index)\n")) }
        try await offThePool { queue.flush() }
        #expect(sink.lines == (0..<500).map { "line \($0)" })
        #expect(queue.droppedLines == 0)
    }

    @Test func aStalledWriterNeverBlocksTheLoggerAndDropsAreCountedThenReported() async throws {
        let sink = GatedLogSink()
        // Room for exactly ten 10-byte lines.
        let queue = LogLineQueue(capacityBytes: 100, dropNotice: { "dropped \($0)\n" }, write: sink.write)
        #expect(queue.enqueue("first 789\n"))
        // The writer thread is now stuck inside write(2).
        #expect(await eventually { sink.entered.load(ordering: .acquiring) })
        // The logger (an event loop) keeps going: the queue fills, then drops, and nothing waits.
        var accepted = 0
        for index in 0..<12 where queue.enqueue("line \(index)   ".prefix(9) + "\n") { accepted += 1 }
        #expect(accepted == 10)
        #expect(queue.droppedLines == 2)
        sink.gate.signal()
        try await offThePool { queue.flush() }
        let lines = sink.lines
        #expect(lines.first == "first 789")
        #expect(lines.count == 12)
        #expect(lines.last == "dropped 2")
        #expect(Array(lines[1...10]) == (0..<10).map { String("line \($0)   ".prefix(9)) })
    }

    @Test func aHandlerLoggingWhileTheWriterIsStalledReturnsAndItsLineIsWrittenLater() async throws {
        let sink = GatedLogSink()
        let queue = LogLineQueue(capacityBytes: 1 << 16, dropNotice: { "dropped \($0)\n" }, write: sink.write)
        let logger = Logger(label: "horgosd") { label in
            JournalLogHandler(label: label, level: .info, format: .journald, queue: queue)
        }
        logger.notice("first")
        #expect(await eventually { sink.entered.load(ordering: .acquiring) })  // the writer is stuck writing "first"
        logger.warning("region queue high", metadata: ["region": "AE"])  // returns although nothing can be written
        #expect(sink.lines.isEmpty)
        sink.gate.signal()
        try await offThePool { queue.flush() }
        #expect(sink.lines == ["<5>horgosd: first", "<4>horgosd: region queue high region=AE"])
    }
}
