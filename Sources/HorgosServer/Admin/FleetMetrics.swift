import Foundation
import HorgosProxyProtocol
import HorgosWire
import Metrics
import X509

/// Metrics for the SRE's dashboards and alerts across nodes (issue 14): series that must exist
/// before anything happens, and the facts behind the certificate and revocation-list alerts.
///
/// `Deploy/prometheus/horgos-rules.yml` and `Deploy/grafana/horgos.json` name only metrics the daemon
/// exports; `rate()` and `increase()` need a series to exist at 0 before the first event, so the
/// labelled PROXY-header counters are created up front with every label value they can take (the refusal
/// and ERROR-frame series are created by ``PipelineMetrics`` and ``NativeMetrics``).
public enum FleetMetrics {
    /// Creates the labelled counters at 0 and records the bounds of `horgos_region_queue_bytes` and of
    /// `horgos_journal_disk_bytes` (`journal.max_bytes`), for the near-the-bound alerts.
    public static func registerSeries(queueHighWatermarkBytes: Int, journalMaxBytes: Int) {
        for reason in ProxyHeaderError.allReasons {
            _ = Counter(label: "horgos_proxy_header_rejected_total", dimensions: [("reason", reason)])
        }
        Gauge(label: "horgos_region_queue_high_watermark_bytes").record(queueHighWatermarkBytes)
        Gauge(label: "horgos_journal_max_bytes").record(journalMaxBytes)
    }

    /// `horgos_server_certificate_expiry_timestamp_seconds`: the notAfter of the server certificate
    /// (the first certificate of the PEM chain file), as Unix time; recorded at start and each reload.
    /// Returns the date, or nil when the file cannot be read (the gauge then keeps its last value).
    @discardableResult
    public static func recordServerCertificateExpiry(chainPath: String) -> Date? {
        guard let text = try? String(contentsOfFile: chainPath, encoding: .utf8),
            let begin = text.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex),
            let certificate = try? Certificate(pemEncoded: String(text[begin.lowerBound..<end.upperBound]))
        else { return nil }
        Gauge(label: "horgos_server_certificate_expiry_timestamp_seconds").record(
            certificate.notValidAfter.timeIntervalSince1970)
        return certificate.notValidAfter
    }

    /// `horgos_revocation_list_loaded_timestamp_seconds`: when the revocation list was last loaded
    /// successfully (start or SIGHUP). A list that automation refreshes and that stops changing shows
    /// here as an old timestamp (the stale-list alert).
    public static func recordRevocationListLoaded(at date: Date = Date()) {
        Gauge(label: "horgos_revocation_list_loaded_timestamp_seconds").record(date.timeIntervalSince1970)
    }
}
