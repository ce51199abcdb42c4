import Metrics
import Prometheus

/// Connects swift-metrics to the Prometheus registry that `/metrics` renders.
///
/// Call ``bootstrap()`` once per process, before any metric is created (swift-metrics traps on a second
/// bootstrap); tests use a ``PrometheusMetricsFactory`` directly instead.
public enum HorgosMetrics {
    /// Bootstraps the global metrics system with a new Prometheus registry and returns that registry;
    /// records `horgos_build_info{version="..."} 1` so the endpoint is never empty.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["horgos_ack_latency_seconds"] = ackLatencyBuckets
        MetricsSystem.bootstrap(factory)
        Gauge(label: "horgos_build_info", dimensions: [("version", HorgosServerInfo.version)]).record(1)
        return registry
    }

    /// Buckets of `horgos_ack_latency_seconds`: fine around the group-commit window (20 ms).
    public static let ackLatencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(15),
        .milliseconds(20), .milliseconds(25), .milliseconds(30), .milliseconds(40), .milliseconds(50),
        .milliseconds(75), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10),
    ]
}
