import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosWire
import Testing

/// The shipped dashboard and alert rules name only metrics the daemon exports (issue 14, item 5):
/// a real daemon is scraped after a little traffic and every `horgos_*` name in
/// `Deploy/grafana/horgos.json` and `Deploy/prometheus/horgos-rules.yml` must be in its `/metrics`.
extension DaemonEndToEndTests {
    /// The `horgos_*` metric families a file names (histogram suffixes folded into their family).
    static func metricFamilies(named file: String) throws -> Set<String> {
        let text = try String(
            contentsOf: DaemonProcess.repositoryRoot.appendingPathComponent(file), encoding: .utf8)
        let regex = try Regex("horgos_[a-z0-9_]+")
        var names: Set<String> = []
        for match in text.matches(of: regex) {
            var name = String(text[match.range])
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                name = String(name.dropLast(suffix.count))
            }
            names.insert(name)
        }
        return names
    }

    @Test func everyMetricTheDashboardAndTheAlertRulesNameIsExportedByTheDaemon() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let report = try await FleetRunner(
            plan: FleetPlan(mode: .vehicles, vehicleCount: 4, regions: [SimulatedRegion.named("AE")!], seed: 5),
            settings: FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 200),
            credentials: try PKIFleetCredentials(authority: try daemon.authority()), threads: 1
        ).run(duration: .seconds(2))
        #expect(report.totals.recordsAcked > 0)
        let scrape = try await daemon.httpGet("/metrics").body
        let exported = Set(
            scrape.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
                .map { String($0.split(separator: " ")[2]) })
        let dashboard = try Self.metricFamilies(named: "Deploy/grafana/horgos.json")
        let rules = try Self.metricFamilies(named: "Deploy/prometheus/horgos-rules.yml")
        #expect(dashboard.count >= 10)
        #expect(rules.count >= 6)
        let missing = dashboard.union(rules).subtracting(exported)
        #expect(missing.isEmpty, "named but not exported: \(missing.sorted())")
        #expect(try await daemon.stop() == 0)
    }

    /// One name, one meaning (PROTOCOL.md 10, "Operator side"): a resent frame is acknowledged as stored
    /// twice, as its ACKs say (`horgos_records_stored_total`), and the writer counts it once as a
    /// duplicate (`horgos_region_duplicates_total`, what the dashboard shows). No series that never moves.
    @Test func aResentRecordIsStoredTwiceForTheAcksAndOnceAsADuplicateForTheWriter() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let frame = WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs() - 60_000)
        for _ in 0..<2 {
            let client = try await WireClient.connect(port: daemon.telemetryPort, context: try vehicleContext(daemon))
            try await client.send(WireClient.hello() + frame)
            let replies = try await client.waitFor { $0.contains { $0.ack != nil } }
            #expect(replies.contains(.ack(Ack(sequence: 1))))
            await client.close()
        }
        // The applier runs within about half a second of the commit; wait for it with a generous bound.
        var scrape = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            scrape = try await daemon.httpGet("/metrics").body
            if scrape.contains("horgos_region_duplicates_total{region=\"AE\"} 1\n") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(scrape.contains("horgos_region_duplicates_total{region=\"AE\"} 1\n"))
        #expect(scrape.contains("horgos_region_records_stored_total{region=\"AE\"} 1\n"))
        #expect(scrape.contains("horgos_records_stored_total{region=\"AE\",protocol=\"native\"} 2\n"))
        #expect(!scrape.contains("horgos_duplicates_total"), "the series that never moved is gone")
        #expect(try await daemon.stop() == 0)
    }
}
