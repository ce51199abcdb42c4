import HorgosStore
import HorgosWire
import Logging
import Metrics
import Synchronization

/// Turns session events into Prometheus metrics (through swift-metrics) and log lines.
///
/// Metrics: `horgos_sessions_total{role}`, `horgos_sessions_open`, `horgos_refusals_total{code}`,
/// `horgos_frames_total{type,region}`, `horgos_records_total{region}`, `horgos_records_stored_total{region}`
/// (acknowledged as stored, duplicates included, as the ACK counts them: a duplicate is found only when
/// the applier writes the rows, and counted there as `horgos_region_duplicates_total`),
/// `horgos_records_rejected_total{region}`, `horgos_errors_sent_total{code}`,
/// `horgos_acks_total`, `horgos_streams_truncated_total` (a client's stream ended inside a frame),
/// `horgos_ack_latency_seconds{region}` (histogram: a data frame's arrival to its
/// commit being back on the event loop, where its ACK is written). Labels are bounded: regions come from configuration, codes from the protocol.
///
/// The per-frame counters are created once per label set and kept (`CounterCache`): creating a
/// swift-metrics `Counter` validates its name and labels and looks the series up under the
/// registry's lock, which cost more than the increment on every frame and every ACK. The ACK latency of
/// the configured regions is an `AckLatencyHistogram` (atomics, no lock per frame), rendered by
/// `prometheusText()`, which the daemon appends to `/metrics`.
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
        // `stored` + `duplicates`: a completion knows no duplicates yet (CommitOutcome), a test sink may.
        counters.regional(.stored, region).increment(by: outcome.stored + outcome.duplicates)
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
        counters.recordAckLatency(region, nanoseconds: Int64(clamping: latencyNanoseconds))
    }

    /// `horgos_ack_latency_seconds` of the configured regions, in the Prometheus text format.
    public func prometheusText() -> String { counters.ackLatencyText() }

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
        case rejected = "horgos_records_rejected_total"
    }

    static let framesLabel = "horgos_frames_total"
    static let ackLatencyLabel = "horgos_ack_latency_seconds"

    /// One region's series, as fields: a frame costs one dictionary lookup (the region), not one per metric.
    private struct RegionCounters: Sendable {
        let telemetryFrames: Counter
        let records: Counter
        let stored: Counter
        let rejected: Counter
        let ackLatency: AckLatencyHistogram

        init(region: String) {
            telemetryFrames = Counter(
                label: CounterCache.framesLabel, dimensions: [("type", "\(FrameType.telemetry)"), ("region", region)])
            func counter(_ metric: Regional) -> Counter { Counter(label: metric.rawValue, dimensions: [("region", region)]) }
            records = counter(.records)
            stored = counter(.stored)
            rejected = counter(.rejected)
            ackLatency = AckLatencyHistogram(region: region)
        }

        func counter(_ metric: Regional) -> Counter {
            switch metric {
            case .records: records
            case .stored: stored
            case .rejected: rejected
            }
        }
    }

    private let known: [String: RegionCounters]
    /// The configured regions' histograms, in configuration order (for `/metrics`).
    private let histograms: [AckLatencyHistogram]
    /// `known` again for two-letter ISO codes, indexed by the letters (26 x 26 slots; 0 = none, else the
    /// index in `lettered` + 1): a frame's lookups hash no String.
    private let slots: [UInt8]
    private let lettered: [RegionCounters]

    init(regions: [String]) {
        var known: [String: RegionCounters] = [:]
        var histograms: [AckLatencyHistogram] = []
        var slots = [UInt8](repeating: 0, count: 26 * 26)
        var lettered: [RegionCounters] = []
        for region in regions where known[region] == nil {
            let counters = RegionCounters(region: region)
            known[region] = counters
            histograms.append(counters.ackLatency)
            if let slot = Self.slot(region), lettered.count < 255 {
                lettered.append(counters)
                slots[slot] = UInt8(lettered.count)
            }
        }
        self.known = known
        self.histograms = histograms
        self.slots = slots
        self.lettered = lettered
    }

    /// The table slot of a code of two ASCII capitals, else nil.
    private static func slot(_ region: String) -> Int? {
        var letters = region.utf8.makeIterator()
        guard let first = letters.next(), let second = letters.next(), letters.next() == nil,
            (65...90).contains(first), (65...90).contains(second)
        else { return nil }
        return Int(first - 65) * 26 + Int(second - 65)
    }

    private func counters(_ region: String) -> RegionCounters? {
        if let slot = Self.slot(region) {
            let index = slots[slot]
            return index == 0 ? nil : lettered[Int(index) - 1]
        }
        return known[region]
    }

    func frames(_ type: FrameType, region: String) -> Counter {
        if type == .telemetry, let cached = counters(region) { return cached.telemetryFrames }
        return Counter(label: Self.framesLabel, dimensions: [("type", "\(type)"), ("region", region)])
    }

    func regional(_ metric: Regional, _ region: String) -> Counter {
        counters(region)?.counter(metric) ?? Counter(label: metric.rawValue, dimensions: [("region", region)])
    }

    func recordAckLatency(_ region: String, nanoseconds: Int64) {
        if let histogram = counters(region)?.ackLatency {
            histogram.record(nanoseconds: nanoseconds)
        } else {
            Timer(label: Self.ackLatencyLabel, dimensions: [("region", region)]).recordNanoseconds(nanoseconds)
        }
    }

    func ackLatencyText() -> String { AckLatencyHistogram.prometheusText(of: histograms) }
}

/// The open-session count behind the gauge.
private final class OpenSessionCounter: Sendable {
    private let value = Atomic<Int>(0)

    func add(_ delta: Int) -> Int {
        value.wrappingAdd(delta, ordering: .relaxed).newValue
    }
}
