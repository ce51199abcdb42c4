import HorgosStore
import HorgosWire
import Logging
import Metrics
import Synchronization

/// Turns session events into Prometheus metrics (through swift-metrics) and log lines.
///
/// Metrics: `horgos_sessions_total{role}`, `horgos_sessions_open`, `horgos_refusals_total{code}`,
/// `horgos_frames_total{type,region}`, `horgos_records_total{region}`, `horgos_records_stored_total{region}`,
/// `horgos_duplicates_total{region}`, `horgos_records_rejected_total{region}`, `horgos_errors_sent_total{code}`,
/// `horgos_acks_total`, `horgos_streams_truncated_total` (a client's stream ended inside a frame),
/// `horgos_ack_latency_seconds{region}` (histogram: a data frame's arrival to its
/// commit being back on the event loop, where its ACK is written). Labels are bounded: regions come from configuration, codes from the protocol.
///
/// The per-frame counters are created once per label set and kept (`CounterCache`): creating a
/// swift-metrics `Counter` validates its name and labels and looks the series up under the
/// registry's lock, which cost more than the increment on every frame and every ACK.
public struct MetricsSessionObserver: SessionObserver {
    private let logger: Logger
    private let open: Gauge
    private let openCount = OpenSessionCounter()
    private let acks: Counter
    private let counters: CounterCache

    /// An observer that logs through `logger`. The counters of `regions` (ISO codes) are created
    /// up front (they start at 0 in `/metrics`, and their hot path takes no lock).
    public init(logger: Logger, regions: [String] = []) {
        self.logger = logger
        self.open = Gauge(label: "horgos_sessions_open")
        self.acks = Counter(label: "horgos_acks_total")
        self.counters = CounterCache(regions: regions)
    }

    /// A session passed identity and region checks.
    public func sessionStarted(_ peer: SessionPeer) {
        Counter(label: "horgos_sessions_total", dimensions: [("role", peer.role.rawValue)]).increment()
        open.record(openCount.add(1))
        logger.info(
            "peer authenticated",
            metadata: [
                "role": "\(peer.role.rawValue)", "vin": "\(peer.vin.map { "\($0)" } ?? "-")",
                "market": "\(peer.market)",
            ])
    }

    /// A connection closed (peer nil: it never became a session).
    public func sessionEnded(_ peer: SessionPeer?) {
        guard peer != nil else { return }
        open.record(openCount.add(-1))
    }

    /// A peer was refused after the handshake (the handler logs the reason).
    public func refused(_ refusal: SessionRefusal) {
        Counter(label: "horgos_refusals_total", dimensions: [("code", refusal.code.name)]).increment()
    }

    /// A frame arrived.
    public func frameReceived(_ type: FrameType, region: String?, records: Int) {
        counters.frames(type, region: region ?? "-").increment()
        if let region, records > 0 {
            counters.regional(.records, region).increment(by: records)
        }
    }

    /// A frame's records were committed.
    public func frameCommitted(region: String, outcome: CommitOutcome) {
        counters.regional(.stored, region).increment(by: outcome.stored)
        if outcome.duplicates > 0 {
            counters.regional(.duplicates, region).increment(by: outcome.duplicates)
        }
        if outcome.rejected > 0 {
            counters.regional(.rejected, region).increment(by: outcome.rejected)
        }
    }

    /// An ERROR frame was sent.
    public func errorSent(_ code: ErrorCode) {
        Counter(label: "horgos_errors_sent_total", dimensions: [("code", code.name)]).increment()
    }

    /// A TLS handshake failed (the session handler logs the reason).
    public func handshakeFailed(reason: String) {
        Counter(label: "horgos_refusals_total", dimensions: [("code", "TLS_HANDSHAKE_FAILED")]).increment()
    }

    /// A data frame's ACK is queued: the server-side ACK latency, by region.
    public func frameAcknowledged(region: String, latencyNanoseconds: UInt64) {
        counters.ackLatency(region).recordNanoseconds(Int64(clamping: latencyNanoseconds))
    }

    /// An ACK was sent.
    public func ackSent() {
        acks.increment()
    }

    /// A client's stream ended inside a frame (no ERROR is sent for it: nobody would read it).
    public func streamEndedInsideFrame() {
        Counter(label: "horgos_streams_truncated_total").increment()
    }
}

/// The per-frame metrics of the configured regions, created once at start and read without a lock.
/// Anything else (HELLO, PING, EVENT and BYE frames, frames before the identity is known, a region
/// not given at start) is rare and goes through swift-metrics, whose registry returns the same series.
private final class CounterCache: Sendable {
    enum Regional: String, Sendable, CaseIterable {
        case records = "horgos_records_total"
        case stored = "horgos_records_stored_total"
        case duplicates = "horgos_duplicates_total"
        case rejected = "horgos_records_rejected_total"
    }

    static let framesLabel = "horgos_frames_total"
    static let ackLatencyLabel = "horgos_ack_latency_seconds"

    private struct RegionCounters: Sendable {
        let telemetryFrames: Counter
        let regional: [Regional: Counter]
        let ackLatency: Timer

        init(region: String) {
            telemetryFrames = Counter(
                label: CounterCache.framesLabel, dimensions: [("type", "\(FrameType.telemetry)"), ("region", region)])
            regional = Dictionary(
                uniqueKeysWithValues: Regional.allCases.map { ($0, Counter(label: $0.rawValue, dimensions: [("region", region)])) })
            ackLatency = Timer(label: CounterCache.ackLatencyLabel, dimensions: [("region", region)])
        }
    }

    private let known: [String: RegionCounters]

    init(regions: [String]) {
        var known: [String: RegionCounters] = [:]
        for region in regions { known[region] = RegionCounters(region: region) }
        self.known = known
    }

    func frames(_ type: FrameType, region: String) -> Counter {
        if type == .telemetry, let counters = known[region] { return counters.telemetryFrames }
        return Counter(label: Self.framesLabel, dimensions: [("type", "\(type)"), ("region", region)])
    }

    func regional(_ metric: Regional, _ region: String) -> Counter {
        known[region]?.regional[metric] ?? Counter(label: metric.rawValue, dimensions: [("region", region)])
    }

    func ackLatency(_ region: String) -> Timer {
        known[region]?.ackLatency ?? Timer(label: Self.ackLatencyLabel, dimensions: [("region", region)])
    }
}

/// The open-session count behind the gauge.
private final class OpenSessionCounter: Sendable {
    private let value = Atomic<Int>(0)

    func add(_ delta: Int) -> Int {
        value.wrappingAdd(delta, ordering: .relaxed).newValue
    }
}
