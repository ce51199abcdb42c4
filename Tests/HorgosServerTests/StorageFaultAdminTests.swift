import Foundation
import NIOHTTP1
import Prometheus
import Synchronization
import Testing

@testable import HorgosServer

/// The admin endpoint's storage-fault answers (issue 26): a full disk on `/health` and `/health/CC`, an
/// unacknowledged quarantine on `/health/CC`, and the acknowledgement `POST`.
@Suite struct StorageFaultAdminTests {
    private struct Status: Encodable, Sendable { var version = "t" }

    private static func region(_ state: String, fault: String? = nil, unacknowledged: [String] = []) -> RegionStatus {
        var status = RegionStatus(
            region: "AE", state: state, fault: fault, message: fault.map { "journal: \($0)" }, queuedBytes: 0,
            recordsStored: 0, recordsDuplicate: 0, recordsRejected: 0, eventsStored: 0, commits: 0, failedAttempts: 0)
        status.quarantineUnacknowledged = unacknowledged
        return status
    }

    private static func sources(
        detail: String? = nil, region: RegionStatus? = nil,
        acknowledge: @escaping @Sendable (String) throws -> (any Encodable & Sendable)? = { _ in nil }
    ) -> AdminServer.Sources {
        var sources = AdminServer.Sources(
            isServing: { true }, status: { Status() }, registry: PrometheusCollectorRegistry(),
            regionStatus: { code in code == "AE" ? region : nil })
        sources.healthDetail = { detail }
        sources.acknowledgeQuarantine = acknowledge
        return sources
    }

    private static func body(_ response: AdminResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    private static func get(_ uri: String, _ sources: AdminServer.Sources) -> AdminResponse {
        AdminHTTPHandler.route(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri), sources: sources)
    }

    @Test func healthStaysTwoHundredAndNamesAFullDisk() {
        #expect(Self.body(Self.get("/health", Self.sources())) == "ok\n")
        let full = Self.get("/health", Self.sources(detail: "disk_full (acknowledging nothing): ENOSPC"))
        #expect(full.status == .ok)
        #expect(Self.body(full) == "degraded: disk_full (acknowledging nothing): ENOSPC\n")
    }

    @Test func aRegionOnAFullDiskAnswers503NamingIt() {
        let response = Self.get("/health/AE", Self.sources(region: Self.region("degraded", fault: "disk_full")))
        #expect(response.status == .serviceUnavailable)
        #expect(Self.body(response).hasPrefix("AE degraded: disk_full"))
    }

    @Test func anUnacknowledgedQuarantineIsNamedWhileTheRegionServes() {
        let name = "telemetry-2026-11-29.sqlite.quarantined-1764417600000"
        let response = Self.get("/health/AE", Self.sources(region: Self.region("ok", unacknowledged: [name])))
        #expect(response.status == .ok)
        #expect(
            Self.body(response)
                == "ok AE; quarantined, not acknowledged: \(name) (horgosctl shards acknowledge AE)\n")
        #expect(Self.body(Self.get("/health/AE", Self.sources(region: Self.region("ok")))) == "ok AE\n")
    }

    @Test func theAcknowledgementIsAPostOnItsOwnPathOnly() {
        struct Answer: Encodable, Sendable { var region: String }
        let asked = Mutex<[String]>([])
        let sources = Self.sources(region: Self.region("ok")) { code in
            asked.withLock { $0.append(code) }
            return code == "AE" ? Answer(region: code) : nil
        }
        let post = { (uri: String) in
            AdminHTTPHandler.action(HTTPRequestHead(version: .http1_1, method: .POST, uri: uri), sources: sources)
        }
        let ok = post("/quarantine/ae/acknowledge")
        #expect(ok.status == .ok)
        #expect(Self.body(ok) == "{\"region\":\"AE\"}\n")
        #expect(post("/quarantine/MX/acknowledge").status == .notFound)
        #expect(post("/health").status == .methodNotAllowed)
        #expect(post("/quarantine/AE").status == .methodNotAllowed)
        #expect(asked.withLock { $0 } == ["AE", "MX"])
        // A GET of the path is not an acknowledgement.
        #expect(Self.get("/quarantine/AE/acknowledge", sources).status == .notFound)
    }
}

/// The storage-fault configuration keys (issue 26): defaults, environment overrides, named refusals.
@Suite struct StorageFaultConfigurationTests {
    @Test func theReserveAndTheCheckIntervalHaveDefaultsAndOverrides() async throws {
        let defaults = try await HorgosConfiguration.load(filePath: nil, environment: [:])
        #expect(defaults.store.journalReserveBytes == 64 << 20)
        #expect(defaults.store.integrityCheckIntervalSeconds == 300)
        let set = try await HorgosConfiguration.load(
            filePath: nil,
            environment: ["HORGOS_JOURNAL_RESERVE_BYTES": "0", "HORGOS_STORE_INTEGRITY_CHECK_INTERVAL_SECONDS": "30"])
        #expect(set.store.journalReserveBytes == 0)
        #expect(set.store.integrityCheckIntervalSeconds == 30)
    }

    @Test func aReserveAboveTheJournalBoundOrANegativeIntervalIsRefusedNamingTheKey() async {
        for (key, value, name) in [
            ("HORGOS_JOURNAL_RESERVE_BYTES", "4294967296", "journal.reserve_bytes"),
            ("HORGOS_STORE_INTEGRITY_CHECK_INTERVAL_SECONDS", "-1", "store.integrity_check_interval_seconds"),
        ] {
            do {
                _ = try await HorgosConfiguration.load(filePath: nil, environment: [key: value])
                Issue.record("\(key)=\(value) must be refused")
            } catch {
                #expect(error.key == name)
            }
        }
    }
}
