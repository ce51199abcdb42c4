import Foundation
import HorgosStore
import HorgosWire
import Prometheus
import Synchronization
import Testing

@testable import HorgosServer

@Suite struct RegionReportTests {
    @Test func statusAndMetricsShowWhatTheWritersCommitted() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-report-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let store = try ShardStore(configuration: StoreConfiguration(
            stateDirectory: state, regions: [Region("AE")!, Region("MX")!], log: { _, _ in }))
        defer { store.stop() }
        var frame: [UInt8] = []
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        FrameEncoder.appendTelemetry(
            vin: VIN("LSVAU2180N2183294")!, baseTimeMs: now,
            records: (0..<7).map { TelemetryRecord(timeOffsetMs: UInt32($0) * 1000, soc: 50) }, sequence: 1, to: &frame)
        let payload = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
        let committed = Atomic<Bool>(false)
        try store.writer(for: Region("AE")!).submitTelemetry(payload) { _ in committed.store(true, ordering: .relaxed) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while !committed.load(ordering: .relaxed) && clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let done = committed.load(ordering: .relaxed)
        #expect(done)
        // Acknowledged once the journal round is durable; in the shards once the applier ran.
        #expect(store.waitUntilApplied())

        let report = RegionReport(store: store)
        let regions = report.regions()
        #expect(regions.map(\.region) == ["AE", "MX"])
        #expect(regions[0].state == "ok" && regions[0].recordsStored == 7 && regions[0].commits >= 1)
        #expect(regions[1].recordsStored == 0)
        #expect(report.totals().records == 7 && report.totals().frames == 1)

        // Gauges and counters through swift-prometheus; published twice, the counters do not double.
        let registry = PrometheusCollectorRegistry()
        let publisher = RegionMetricsPublisher(registry: registry)
        report.publish(into: publisher)
        report.publish(into: publisher)
        let published = registry.emitToString()
        #expect(published.contains("horgos_region_records_stored_total{region=\"AE\"} 7\n"))
        #expect(published.contains("# TYPE horgos_region_records_stored_total counter"))
        #expect(published.contains("horgos_region_degraded{region=\"AE\",fault=\"\"} 0"))
        #expect(published.contains("horgos_region_queue_bytes{region=\"MX\"} 0"))
        let text = report.prometheusText()
        #expect(text.contains("# TYPE horgos_commit_latency_seconds histogram"))
        // The +Inf bucket equals the count, and the count equals the journal rounds that held AE's frames.
        #expect(text.contains("horgos_commit_latency_seconds_bucket{region=\"AE\",le=\"+Inf\"} 1\n"))
        #expect(text.contains("horgos_commit_latency_seconds_count{region=\"AE\"} 1\n"))
        #expect(text.contains("horgos_region_apply_lag_entries{region=\"AE\"} 0\n"))
        #expect(text.contains("horgos_region_applied_lsn{region=\"AE\"} 1\n"))
        #expect(text.contains("horgos_journal_entries_total 1\n"))
        #expect(regions[0].appliedLsn == 1 && regions[0].applyLagEntries == 0)
    }
}
