import Metrics
import Prometheus

/// Connects swift-metrics to the Prometheus registry that `/metrics` renders.
///
/// Call ``bootstrap()`` once per process, before any metric is created (swift-metrics traps on a second
/// bootstrap); tests use a ``PrometheusMetricsFactory`` directly instead.
public enum HorgosMetrics {
    /// Bootstraps the global metrics system with a new Prometheus registry and returns that registry.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
