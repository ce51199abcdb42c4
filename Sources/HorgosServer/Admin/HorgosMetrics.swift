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
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        Gauge(label: "horgos_build_info", dimensions: [("version", HorgosServerInfo.version)]).record(1)
        return registry
    }
}
