import Histogram
import HorgosWire
import Synchronization

/// Counters and the ack-latency histogram of a simulated fleet run, shared by all connections.
public final class FleetStats: Sendable {
    struct Counters {
        var framesSent = 0
        var framesAcked = 0
        var recordsGenerated = 0
        var recordsAcked = 0
        var recordsRejected = 0
        var connects = 0
        var handshakeFailures = 0
        var disconnects = 0
        var resentFrames = 0
        var errors: [String: Int] = [:]
        var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        /// Only frames acknowledged in the measured phase (every unit connected, before the drain).
        var steadyLatency = Histogram<UInt64>(
            highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var measuring = false
        var connected = 0
        var peakConnected = 0
        var finishedUnits = 0
    }

    private let counters = Mutex(Counters())

    public init() {}

    /// Units that have finished (everything acknowledged and BYE sent, or given up).
    public var finishedUnits: Int { counters.withLock { $0.finishedUnits } }

    func update(_ body: (inout Counters) -> Void) { counters.withLock { body(&$0) } }

    /// Starts or ends the measured phase: ACK latencies recorded meanwhile also go to the steady-state
    /// histogram (the connection ramp's handshakes and the drain stay out of it).
    func setMeasuring(_ on: Bool) { counters.withLock { $0.measuring = on } }

    /// Records the send-to-ACK latencies of acknowledged frames (µs).
    func recordLatencies(_ latencies: [UInt64], in counters: inout Counters) {
        for latency in latencies {
            _ = counters.latency.record(latency)
            if counters.measuring { _ = counters.steadyLatency.record(latency) }
        }
    }

    /// A consistent copy of every figure, for the progress line and the final report.
    public func snapshot() -> FleetSnapshot {
        counters.withLock { c in
            FleetSnapshot(
                framesSent: c.framesSent, framesAcked: c.framesAcked, recordsGenerated: c.recordsGenerated,
                recordsAcked: c.recordsAcked, recordsRejected: c.recordsRejected, connects: c.connects,
                handshakeFailures: c.handshakeFailures, disconnects: c.disconnects, resentFrames: c.resentFrames,
                errors: c.errors, connected: c.connected, peakConnected: c.peakConnected,
                ackLatencyMicros: .init(
                    p50: c.latency.valueAtPercentile(50), p90: c.latency.valueAtPercentile(90),
                    p99: c.latency.valueAtPercentile(99), p999: c.latency.valueAtPercentile(99.9),
                    max: c.latency.max, count: Int(c.latency.totalCount)),
                steadyAckLatencyMicros: .init(
                    p50: c.steadyLatency.valueAtPercentile(50), p90: c.steadyLatency.valueAtPercentile(90),
                    p99: c.steadyLatency.valueAtPercentile(99), p999: c.steadyLatency.valueAtPercentile(99.9),
                    max: c.steadyLatency.max, count: Int(c.steadyLatency.totalCount)))
        }
    }
}

/// The figures of a fleet run at one moment (Codable, for `--json`).
public struct FleetSnapshot: Sendable, Codable, Hashable {
    /// Ack latency percentiles in microseconds, from HdrHistogram (3 significant digits).
    public struct Latency: Sendable, Codable, Hashable {
        public var p50: UInt64
        public var p90: UInt64
        public var p99: UInt64
        public var p999: UInt64
        public var max: UInt64
        public var count: Int
    }

    public var framesSent: Int
    public var framesAcked: Int
    public var recordsGenerated: Int
    public var recordsAcked: Int
    public var recordsRejected: Int
    public var connects: Int
    public var handshakeFailures: Int
    public var disconnects: Int
    public var resentFrames: Int
    public var errors: [String: Int]
    public var connected: Int
    public var peakConnected: Int
    /// Every acknowledged frame, the connection ramp and the drain included.
    public var ackLatencyMicros: Latency
    /// Frames acknowledged in the measured phase only: every unit connected, traffic steady.
    public var steadyAckLatencyMicros: Latency
}
