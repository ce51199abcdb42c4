import Synchronization

/// `horgos_ack_latency_seconds{region,protocol}` without a lock: two relaxed atomic adds per observation (its bucket, the sum).
///
/// The ACK latency is recorded for every data frame, on the event loop. swift-prometheus's histogram
/// takes a lock and walks every bucket on each observation; with one record per frame (vehicles at
/// 10 Hz) that was a lock per record on the loops. This one keeps per-bucket counts in atomics and
/// renders the cumulative Prometheus form only when `/metrics` is read (a scrape may see a count one
/// frame ahead of a bucket; every figure only grows). Buckets: `HorgosMetrics.ackLatencyBuckets`.
public final class AckLatencyHistogram: Sendable {
    /// The metric's name in `/metrics`.
    public static let name = "horgos_ack_latency_seconds"

    public let region: String
    /// The `protocol` label (`native`, `gbt32960`).
    public let protocolName: String
    private let upperBoundsNs: [Int64]
    /// One counter per bucket (not cumulative) plus the overflow bucket (+Inf) at the end.
    private let buckets: [AtomicCount]
    private let sumNs = AtomicCount()

    public init(region: String, protocolName: String = "native", buckets: [Duration] = HorgosMetrics.ackLatencyBuckets) {
        self.region = region
        self.protocolName = protocolName
        self.upperBoundsNs = buckets.map {
            Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000
        }
        self.buckets = (0...buckets.count).map { _ in AtomicCount() }
    }

    /// Counts one observation (any thread, no lock).
    public func record(nanoseconds: Int64) {
        var index = 0
        while index < upperBoundsNs.count && upperBoundsNs[index] < nanoseconds { index += 1 }
        buckets[index].add(1)
        sumNs.add(Int(nanoseconds))
    }

    /// Observations so far.
    public var observations: Int { buckets.reduce(0) { $0 + $1.value } }

    /// The Prometheus text lines of this region's series (no `# TYPE` line: see `prometheusText(of:)`).
    public func appendSeries(to text: inout String) {
        PrometheusHistogramText.appendSeries(
            Self.name, labels: "region=\"\(region)\",protocol=\"\(protocolName)\"",
            upperBounds: upperBoundsNs.map { Int($0) }, counts: buckets.map(\.value), sum: sumNs.value,
            unitsPerSecond: 1e9, to: &text)
    }

    /// The whole metric (one `# TYPE` line, then every histogram's series).
    public static func prometheusText(of histograms: [AckLatencyHistogram]) -> String {
        guard !histograms.isEmpty else { return "" }
        var text = "# TYPE \(name) histogram\n"
        for histogram in histograms { histogram.appendSeries(to: &text) }
        return text
    }
}

/// A counter in its own object, so a histogram can hold an array of them.
private final class AtomicCount: Sendable {
    private let atomic = Atomic<Int>(0)
    func add(_ delta: Int) { atomic.wrappingAdd(delta, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}
