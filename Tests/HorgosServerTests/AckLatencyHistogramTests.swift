import Foundation
import HorgosWire
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
            horgos_ack_latency_seconds_bucket{region="AE",protocol="native",le="0.001"} 2
            horgos_ack_latency_seconds_bucket{region="AE",protocol="native",le="0.01"} 3
            horgos_ack_latency_seconds_bucket{region="AE",protocol="native",le="+Inf"} 4
            horgos_ack_latency_seconds_sum{region="AE",protocol="native"} 2.0055
            horgos_ack_latency_seconds_count{region="AE",protocol="native"} 4

            """)
    }

    @Test func eachProtocolsRegionCountersRecordTheirOwnAckLatency() {
        let native = PipelineMetrics(protocolName: "native")
        let gbt32960 = PipelineMetrics(protocolName: "gbt32960")
        let nativeNO = native.counters(for: Region("NO")!)
        _ = native.counters(for: Region("AE")!)
        let gbtNO = gbt32960.counters(for: Region("NO")!)
        nativeNO.acknowledged(latencyNanoseconds: 3_000_000)
        nativeNO.acknowledged(latencyNanoseconds: 30_000_000)
        gbtNO.acknowledged(latencyNanoseconds: 3_000_000)
        let text = PipelineMetrics.ackLatencyText([native, gbt32960])
        #expect(text.contains("horgos_ack_latency_seconds_count{region=\"NO\",protocol=\"native\"} 2\n"))
        #expect(text.contains("horgos_ack_latency_seconds_count{region=\"AE\",protocol=\"native\"} 0\n"))
        #expect(text.contains("horgos_ack_latency_seconds_count{region=\"NO\",protocol=\"gbt32960\"} 1\n"))
        #expect(text.contains("horgos_ack_latency_seconds_bucket{region=\"NO\",protocol=\"native\",le=\"0.005\"} 1\n"))
        #expect(text.components(separatedBy: "# TYPE").count == 2)
    }
}
