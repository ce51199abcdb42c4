/// The Prometheus text series of one histogram whose counts are kept elsewhere (a writer's statistics,
/// a publisher's snapshot, an atomic histogram): cumulative `_bucket` lines, `+Inf`, `_sum` and `_count`.
/// One writer for every hand-kept histogram of `/metrics`, so their buckets read the same way.
public enum PrometheusHistogramText {
    /// Appends the series of `name` with `labels` (`region="AE"`, or empty). `upperBounds` are the bucket
    /// bounds in the unit `unitsPerSecond` converts from; `counts` has one more entry than `upperBounds` (the
    /// observations past the last bound); `sum` is in the same unit.
    public static func appendSeries(
        _ name: String, labels: String, upperBounds: [Int], counts: [Int], sum: Int, unitsPerSecond: Double,
        to text: inout String
    ) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        for (index, bound) in upperBounds.enumerated() {
            cumulative += counts[index]
            text += "\(name)_bucket{\(prefix)le=\"\(Double(bound) / unitsPerSecond)\"} \(cumulative)\n"
        }
        cumulative += counts.count > upperBounds.count ? counts[upperBounds.count] : 0
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
        let braces = labels.isEmpty ? "" : "{\(labels)}"
        text += "\(name)_sum\(braces) \(Double(sum) / unitsPerSecond)\n"
        text += "\(name)_count\(braces) \(cumulative)\n"
    }
}
