import Foundation
import Logging
import Testing

@testable import HorgosServer

@Suite struct AckLatencyHistogramTests {
    @Test func observationsRenderAsCumulativePrometheusBuckets() {
        let histogram = AckLatencyHistogram(region: "AE", buckets: [.milliseconds(1), .milliseconds(10)])
        histogram.record(nanoseconds: 500_000)  // 0.5 ms
        histogram.record(nanoseconds: 1_000_000)  // exactly 1 ms: le="0.001" holds it
        histogram.record(nanoseconds: 4_000_000)
        histogram.record(nanoseconds: 2_000_000_000)  // beyond the last bound
        #expect(histogram.observations == 4)
        #expect(AckLatencyHistogram.prometheusText(of: [histogram]) == """
            # TYPE horgos_ack_latency_seconds histogram
            horgos_ack_latency_seconds_bucket{region="AE",le="0.001"} 2
            horgos_ack_latency_seconds_bucket{region="AE",le="0.01"} 3
            horgos_ack_latency_seconds_bucket{region="AE",le="+Inf"} 4
            horgos_ack_latency_seconds_sum{region="AE"} 2.0055
            horgos_ack_latency_seconds_count{region="AE"} 4

            """)
    }

    @Test func theObserverRecordsEachConfiguredRegionsAckLatency() {
        let observer = MetricsSessionObserver(logger: Logger(label: "test"), regions: ["AE", "NO"])
        observer.frameAcknowledged(region: "NO", latencyNanoseconds: 3_000_000)
        observer.frameAcknowledged(region: "NO", latencyNanoseconds: 30_000_000)
        let text = observer.prometheusText()
        #expect(text.contains("horgos_ack_latency_seconds_count{region=\"NO\"} 2\n"))
        #expect(text.contains("horgos_ack_latency_seconds_count{region=\"AE\"} 0\n"))
        #expect(text.contains("horgos_ack_latency_seconds_bucket{region=\"NO\",le=\"0.005\"} 1\n"))
        #expect(text.components(separatedBy: "# TYPE").count == 2)
    }
}
