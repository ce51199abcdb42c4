import Foundation
import HorgosPKI
import HorgosServer
import HorgosSimulator
import HorgosStore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import HorgosTestSupport
import Testing

/// Storage that takes frames but commits none until released: a stalled writer.
final class StalledSink: IngestSink {
    let held = Mutex<[IngestSubmission]>([])
    let heldBytes = Atomic<Int>(0)
    let released = Atomic<Bool>(false)

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        if released.load(ordering: .relaxed) {
            submission.completion(CommitOutcome(stored: 1))
            return
        }
        heldBytes.add(submission.payload.readableBytes, ordering: .relaxed)
        held.withLock { $0.append(submission) }
    }

    /// The writer recovers: everything held commits, and new frames commit at once.
    func release() {
        released.store(true, ordering: .relaxed)
        let all = held.withLock { held in
            defer { held.removeAll() }
            return held
        }
        for submission in all { submission.completion(CommitOutcome(stored: 1)) }
    }
}

@Suite struct StalledWriterBackpressureTests {
    @Test func memoryStaysBoundedWhileAWriterIsStalledAndHundredsOfClientsKeepSending() async throws {
        let sink = StalledSink()
        let high = 1 << 20
        let fixture = try await ListenerFixture.start(
            regions: ["AE"], storage: sink, highWatermark: high, lowWatermark: high / 2, ackWindow: 512)
        let connections = 200
        // Each client may have 512 frames of 2 KiB in flight: 200 MiB if nothing pushed back.
        var settings = FleetSettings(port: fixture.port, reportIntervalMs: 0, recordsPerFrame: 50)
        settings.initialBackoffMs = 100
        let runner = FleetRunner(
            plan: FleetPlan(mode: .vehicles, vehicleCount: connections, regions: [SimulatedRegion.named("AE")!],
                            seed: 77),
            settings: settings, credentials: try PKIFleetCredentials(authority: fixture.authority), threads: 1)
        let peak = Atomic<Int>(0)
        let flow = fixture.flows["AE"]!
        let watcher = Task {
            while !Task.isCancelled {
                let queued = flow.queuedBytes
                if queued > peak.load(ordering: .relaxed) { peak.store(queued, ordering: .relaxed) }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        let stats = runner.stats
        let released = Task {
            // Stall until the whole fleet is connected and at least half of its sessions wait for room (the
            // region's queue went over its high watermark under them), then let the writer recover. Bounded below
            // the runner's drain timeout: on a machine too slow to get there, the expectations below fail.
            _ = await eventually(seconds: 60, pollMilliseconds: 50) {
                stats.snapshot().connected >= connections && flow.waitingSessions >= connections / 2
            }
            // Before the writer recovers: sessions are paused, the queue is bounded.
            let waiting = flow.waitingSessions
            sink.release()
            return waiting
        }
        let report = try await runner.run(duration: .seconds(4), drainTimeout: .seconds(90))
        let pausedSessions = await released.value
        watcher.cancel()
        try await fixture.stop()
        // Reads stopped above the high watermark: what was queued stayed within the watermark plus what
        // one read cycle can still deliver per connection (the listener's maxMessagesPerRead of 4 reads
        // of at most 64 KiB), far below the 200 MiB the clients' windows would have allowed.
        let bound = high + connections * 4 * 64 * 1024
        let windowsAllow = connections * 512 * 2044
        #expect(peak.load(ordering: .relaxed) > high, "the watermark was reached")
        #expect(peak.load(ordering: .relaxed) <= bound, "peak \(peak.load(ordering: .relaxed)) vs bound \(bound)")
        #expect(sink.heldBytes.load(ordering: .relaxed) <= bound)
        #expect(bound < windowsAllow / 3, "the bound is the watermark's, not the windows'")
        #expect(pausedSessions > 0, "sessions were waiting for room")
        // After the writer recovered, every frame was acknowledged: nothing lost, nothing refused.
        #expect(report.totals.errors.isEmpty)
        #expect(report.outstandingFrames == 0)
        #expect(report.totals.connects >= connections, "every client connected")
    }
}
