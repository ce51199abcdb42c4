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
/// `horgos_acks_total`. Labels are bounded: regions come from configuration, codes from the protocol.
public struct MetricsSessionObserver: SessionObserver {
    private let logger: Logger
    private let open: Gauge
    private let openCount = OpenSessionCounter()

    /// An observer that logs through `logger`.
    public init(logger: Logger) {
        self.logger = logger
        self.open = Gauge(label: "horgos_sessions_open")
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
        Counter(label: "horgos_frames_total", dimensions: [("type", "\(type)"), ("region", region ?? "-")])
            .increment()
        if let region, records > 0 {
            Counter(label: "horgos_records_total", dimensions: [("region", region)]).increment(by: records)
        }
    }

    /// A frame's records were committed.
    public func frameCommitted(region: String, outcome: CommitOutcome) {
        let dimensions = [("region", region)]
        Counter(label: "horgos_records_stored_total", dimensions: dimensions).increment(by: outcome.stored)
        if outcome.duplicates > 0 {
            Counter(label: "horgos_duplicates_total", dimensions: dimensions).increment(by: outcome.duplicates)
        }
        if outcome.rejected > 0 {
            Counter(label: "horgos_records_rejected_total", dimensions: dimensions).increment(by: outcome.rejected)
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

    /// An ACK was sent.
    public func ackSent() {
        Counter(label: "horgos_acks_total").increment()
    }
}

/// The open-session count behind the gauge.
private final class OpenSessionCounter: Sendable {
    private let value = Atomic<Int>(0)

    func add(_ delta: Int) -> Int {
        value.wrappingAdd(delta, ordering: .relaxed).newValue
    }
}
