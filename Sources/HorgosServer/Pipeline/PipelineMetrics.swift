import HorgosStore
import HorgosWire
import Metrics
import Synchronization

/// The pipeline's metrics for one protocol, every series labelled `protocol` (`native`, `gbt32960`).
///
/// `horgos_sessions_total{protocol,role}`, `horgos_sessions_open{protocol}`, `horgos_refusals_total{protocol,code}`
/// (TLS handshake failures, handshake timeouts, connection limits, identity, revocation, unknown market),
/// and per region: `horgos_records_total` (received), `horgos_records_stored_total` (acknowledged as stored,
/// duplicates included, as the answer counts them: a duplicate is found only when the applier writes the
/// rows, and counted there as `horgos_region_duplicates_total`), `horgos_records_rejected_total` and the ACK latency histogram `horgos_ack_latency_seconds` (a data
/// frame's arrival to its commit back on the event loop). The region series are created once per region
/// (``RegionCounters``, held by the session's ``RegionHandle``): the per-frame path takes no lock.
/// What only one protocol has (native frame types and ERROR codes, GB/T 32960 commands and answers) is
/// that protocol's own metrics.
public final class PipelineMetrics: Sendable {
    /// The `protocol` label.
    public let protocolName: String
    private let open: Gauge
    private let openCount = Atomic<Int>(0)
    private let histograms = Mutex<[AckLatencyHistogram]>([])

    /// The refusal codes created at 0 for every protocol (so `rate()` has a series before the first one).
    public static let refusalCodes: [String] = [
        "TOTAL_LIMIT", "ADDRESS_LIMIT", "HANDSHAKE_TIMEOUT", "TLS_HANDSHAKE_FAILED",
        ErrorCode.unknownMarket.name, ErrorCode.certificateRevoked.name, ErrorCode.identityInvalid.name,
    ]

    /// The metrics of `protocolName`; its refusal series start at 0.
    public init(protocolName: String) {
        self.protocolName = protocolName
        open = Gauge(label: "horgos_sessions_open", dimensions: [("protocol", protocolName)])
        for code in Self.refusalCodes { _ = refusalCounter(code) }
    }

    private func refusalCounter(_ code: String) -> Counter {
        Counter(label: "horgos_refusals_total", dimensions: [("protocol", protocolName), ("code", code)])
    }

    /// A peer passed admission.
    public func sessionStarted(role: String) {
        Counter(label: "horgos_sessions_total", dimensions: [("protocol", protocolName), ("role", role)]).increment()
        open.record(openCount.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// A session's connection closed.
    public func sessionEnded() {
        open.record(openCount.wrappingSubtract(1, ordering: .relaxed).newValue)
    }

    /// Open sessions now.
    public var openSessions: Int { openCount.load(ordering: .relaxed) }

    /// A connection was refused (`code`: an ERROR code name, or an accept-time reason such as `TOTAL_LIMIT`).
    public func refused(_ code: String) { refusalCounter(code).increment() }

    /// A TLS handshake failed (no client certificate, another CA, expired, old protocol version...).
    public func handshakeFailed() { refused("TLS_HANDSHAKE_FAILED") }

    /// The TLS handshake and the protocol's opening (HELLO, login) did not finish in time.
    public func handshakeTimedOut() { refused("HANDSHAKE_TIMEOUT") }

    /// The counters of `region` for this protocol (created once; its ACK latency is rendered by
    /// ``prometheusText()``).
    public func counters(for region: Region) -> RegionCounters {
        let counters = RegionCounters(region: region, protocolName: protocolName)
        histograms.withLock { $0.append(counters.ackLatency) }
        return counters
    }

    /// `horgos_ack_latency_seconds` of every region of this protocol, without its `# TYPE` line.
    public func appendAckLatency(to text: inout String) {
        for histogram in histograms.withLock({ $0 }) { histogram.appendSeries(to: &text) }
    }

    /// `horgos_ack_latency_seconds` of every protocol in `metrics`, in the Prometheus text format.
    public static func ackLatencyText(_ metrics: [PipelineMetrics]) -> String {
        var text = "# TYPE \(AckLatencyHistogram.name) histogram\n"
        for metric in metrics { metric.appendAckLatency(to: &text) }
        return text
    }
}

/// One region's counters for one protocol, created once and updated with atomics only.
public final class RegionCounters: Sendable {
    let records: Counter
    let stored: Counter
    let rejected: Counter
    let ackLatency: AckLatencyHistogram

    init(region: Region, protocolName: String) {
        let dimensions = [("region", region.code), ("protocol", protocolName)]
        records = Counter(label: "horgos_records_total", dimensions: dimensions)
        stored = Counter(label: "horgos_records_stored_total", dimensions: dimensions)
        rejected = Counter(label: "horgos_records_rejected_total", dimensions: dimensions)
        ackLatency = AckLatencyHistogram(region: region.code, protocolName: protocolName)
    }

    /// A frame of `records` records was handed to storage.
    func received(records count: Int) {
        if count > 0 { records.increment(by: count) }
    }

    /// A frame's commit came back.
    func committed(_ outcome: CommitOutcome) {
        // `stored` + `duplicates`: a completion knows no duplicates yet (CommitOutcome), a test sink may.
        if outcome.stored + outcome.duplicates > 0 { stored.increment(by: outcome.stored + outcome.duplicates) }
        if outcome.rejected > 0 { rejected.increment(by: outcome.rejected) }
    }

    /// A frame's answer is about to be written: its server-side latency.
    func acknowledged(latencyNanoseconds: UInt64) {
        ackLatency.record(nanoseconds: Int64(clamping: latencyNanoseconds))
    }
}
