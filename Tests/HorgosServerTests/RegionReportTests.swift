import Foundation
import HorgosStore
import HorgosWire
import Prometheus
import Synchronization
import HorgosTestSupport
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
        // Acknowledged once the journal round is durable; in the shards (and the counters) once the applier ran.
        #expect(await eventually { committed.load(ordering: .relaxed) })
        #expect(await eventually { store.writers[Region("AE")!]!.statistics.appliedEntries == 1 })

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

@Suite struct RegionReportConsistencyTests {
    /// `/status` is a snapshot: while the appliers run, no report shows a region's applied LSN past an entry
    /// and still counts that entry as apply lag (issue 25: `appliedLsn == 1` with `applyLagEntries == 1`).
    /// One region, so its LSNs are 1, 2, 3...: the applied LSN plus the lag is every entry delivered so far.
    /// A producer thread submits frames in small bursts while a reader thread takes reports as fast as it can.
    @Test func aReportNeverCountsAnAppliedEntryAsLagWhileTheAppliersRun() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-report-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let store = try ShardStore(configuration: StoreConfiguration(
            stateDirectory: state, regions: [Region("AE")!], applyIntervalMs: 0, log: { _, _ in }))
        defer { store.stop() }
        let writer = try store.writer(for: Region("AE")!)
        let report = RegionReport(store: store)
        let frames = 2_000
        let acknowledged = Atomic<Int>(0)
        let producer = Thread {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for index in 0..<frames {
                var frame: [UInt8] = []
                FrameEncoder.appendTelemetry(
                    vin: VIN("LSVAU2180N2183294")!, baseTimeMs: now - Int64(index) * 1000,
                    records: [TelemetryRecord(timeOffsetMs: 0, soc: 50)], sequence: 1, to: &frame)
                let payload = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
                try? writer.submitTelemetry(payload) { _ in acknowledged.add(1, ordering: .relaxed) }
                if index % 20 == 19 { usleep(1_000) }  // bursts, so the appliers alternate between lag and none
            }
        }
        producer.start()
        struct Reads: Sendable {
            var count = 0
            var withLag = 0
            var inconsistent: [String] = []
        }
        let reads = try await offThePool {
            var reads = Reads()
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                let snapshot = report.snapshot()
                let status = report.regions(snapshot)[0]
                let statistics = snapshot.regions[0].writer.statistics
                reads.count += 1
                if status.applyLagEntries > 0 { reads.withLag += 1 }
                if status.appliedLsn + UInt64(status.applyLagEntries) != UInt64(statistics.deliveredEntries)
                    || statistics.appliedEntries + statistics.unappliedEntries != statistics.deliveredEntries
                    || (status.applyLagEntries == 0) != (status.queuedBytes == 0)
                {
                    reads.inconsistent.append(
                        "applied LSN \(status.appliedLsn), lag \(status.applyLagEntries) entries / "
                            + "\(status.queuedBytes) bytes, delivered \(statistics.deliveredEntries)")
                }
                if statistics.appliedEntries == frames { break }
            }
            return reads
        }
        #expect(
            reads.inconsistent.isEmpty,
            "\(reads.inconsistent.count) of \(reads.count) reads: \(reads.inconsistent.prefix(3))")
        #expect(acknowledged.load(ordering: .relaxed) == frames)
        #expect(report.regions()[0].appliedLsn == UInt64(frames) && report.regions()[0].applyLagEntries == 0)
        #expect(reads.withLag > 0, "no read caught the appliers behind; the test did not test anything")
    }
}
