import Foundation
import HorgosAdminAPI
import HorgosStore
import HorgosWire
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("horgosctl prune, integrity check and the daemon's admin endpoint")
struct MaintenanceCommandTests {
    @Test("prune deletes only partitions older than the retention and the late horizon, never the registry")
    func pruneRemovesOnlyOldPartitions() async throws {
        // The daemon's configuration says 30 days; the writer kept everything (it ran with 3650).
        let fixture = try CtlFixture(regions: ["AE", "BR"], extraConfig: "store:\n  retention_days: 30")
        let day = UTCDay.millisecondsPerDay
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE", "BR"], nowMs: noon)
        let days: [(String, Int64)] = [
            ("2026-08-01", noon - 120 * day), ("2026-10-20", noon - 40 * day), ("2026-11-15", noon - 14 * day),
            ("2026-11-29", noon),
        ]
        for (_, time) in days {
            writer.setNow(time)
            try await writer.store("AE", testVIN(1), baseTimeMs: time, minuteRecords(3))
        }
        writer.setNow(noon - 40 * day)
        try await writer.store("BR", testVIN(2), baseTimeMs: noon - 40 * day, minuteRecords(2))
        writer.stop()
        let ae = fixture.state + "/AE"
        #expect(try partitionFiles(ae) == days.map { "telemetry-\($0.0).sqlite" })

        let dry = try await fixture.run(["prune", "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect((try dry.json()["pruned"] as? [Any])?.count == 3)
        #expect(try partitionFiles(ae).count == 4, "a dry run deletes nothing")

        let run = try await fixture.run(["prune", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try run.json()
        #expect(report["retentionDays"] as? Int == 30)
        let pruned = try #require(report["pruned"] as? [[String: Any]])
        #expect(pruned.map { "\($0["region"]!)/\($0["day"]!)" } == ["AE/2026-08-01", "AE/2026-10-20", "BR/2026-10-20"])
        #expect(try partitionFiles(ae) == ["telemetry-2026-11-15.sqlite", "telemetry-2026-11-29.sqlite"])
        #expect(FileManager.default.fileExists(atPath: ae + "/registry.sqlite"))
        #expect(FileManager.default.fileExists(atPath: fixture.state + "/BR/registry.sqlite"))
        #expect(
            !(try FileManager.default.contentsOfDirectory(atPath: ae).contains { $0.contains("2026-08-01") }),
            "the -wal and -shm files go with their partition")

        // --older-than 1d overrides the retention: 11-15 (14 days old, past the 7-day late horizon) goes,
        // today stays (the writer still accepts records for it).
        let short = try await fixture.run(["prune", "--older-than", "1d", "--json"])
        #expect(short.status == 0, "\(short.stderr)")
        #expect(try partitionFiles(ae) == ["telemetry-2026-11-29.sqlite"])
        let fleet = try await fixture.run(["fleet", "--region", "AE", "--json"])
        #expect((try fleet.json()["regions"] as? [[String: Any]])?.first?["vehiclesTotal"] as? Int == 1)
    }

    @Test("prune keeps a day older than the retention while the writer may still accept late records for it")
    func pruneRespectsLateHorizon() async throws {
        let fixture = try CtlFixture(regions: ["AE"], extraConfig: "store:\n  retention_days: 1")
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE"], nowMs: noon)
        try await writer.store("AE", testVIN(1), baseTimeMs: noon - 4 * UTCDay.millisecondsPerDay, minuteRecords(2))
        writer.stop()
        let run = try await fixture.run(["prune", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect((try run.json()["pruned"] as? [Any])?.isEmpty == true)
        #expect(try partitionFiles(fixture.state + "/AE") == ["telemetry-2026-11-25.sqlite"])
    }

    @Test("shards --check exits 5 and names the file when a partition is corrupted")
    func corruptedShardIsADataProblem() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE"], nowMs: noon)
        for index in 0..<40 {
            try await writer.store("AE", testVIN(index), baseTimeMs: noon - 3_600_000, minuteRecords(30))
        }
        writer.stop()
        let path = fixture.state + "/AE/telemetry-2026-11-29.sqlite"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size > 16384)
        // Overwrite every page after the first two with garbage: the schema stays readable, the data is not.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 8192)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: size - 8192))
        try handle.close()

        let run = try await fixture.run(["shards", "--check", "--json"])
        #expect(run.status == 5, "\(run.stderr)")
        #expect(run.stderr.contains("telemetry-2026-11-29.sqlite"))
        let report = try run.json()
        #expect(report["ok"] as? Bool == false)
        let region = try #require((report["regions"] as? [[String: Any]])?.first)
        let checks = try #require(region["integrity"] as? [[String: Any]])
        #expect(checks.first { $0["name"] as? String == "registry.sqlite" }?["ok"] as? Bool == true)
        #expect(checks.first { $0["name"] as? String == "telemetry-2026-11-29.sqlite" }?["ok"] as? Bool == false)

        let table = try await fixture.run(["shards", "--check"])
        #expect(table.status == 5)
        #expect(table.stdout.contains("FAILED"))

        // A file that is not a database at all.
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
        try? FileManager.default.removeItem(atPath: path + "-wal")
        try? FileManager.default.removeItem(atPath: path + "-shm")
        let garbage = try await fixture.run(["shards", "--check", "--json"])
        #expect(garbage.status == 5, "\(garbage.stderr)")
        let export = try await fixture.run(["export", "--region", "AE", "--from", "1d", "--to", "now"])
        #expect(export.status == 5, "\(export.stderr)")
    }

    @Test("status exits 3 with advice when nothing listens on the admin address")
    func statusUnreachable() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let explicit = try await fixture.run(["status", "--admin", "http://127.0.0.1:\(closedPort())"])
        #expect(explicit.status == 3)
        #expect(explicit.stderr.contains("horgosd") && explicit.stderr.contains("--admin"))
        let configured = try await fixture.run(["status", "--json"])
        #expect(configured.status == 3, "listen.admin of the configuration is a closed port")
    }

    @Test("status renders the daemon's document: --json passes it through, the table has a row per region")
    func statusFromAdminEndpoint() async throws {
        let document = """
            {"uptimeSeconds":42,"connections":7,"version":"test","regions":[\
            {"region":"AE","state":"ok","queuedBytes":0},{"region":"BR","state":"degraded","queuedBytes":512}]}
            """
        let server = try OneShotHTTPServer(body: document, requests: 2)
        let fixture = try CtlFixture(regions: ["AE"])
        let json = try await fixture.run(["status", "--admin", "http://127.0.0.1:\(server.port)", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == document)
        let table = try await fixture.run(["status", "--admin", "127.0.0.1:\(server.port)"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("connections"))
        let regionLines = table.stdout.split(separator: "\n").filter { $0.hasPrefix("AE") || $0.hasPrefix("BR") }
        #expect(regionLines.count == 2)
        #expect(regionLines.last?.contains("degraded") == true)
        #expect(server.requestLines.allSatisfy { $0.hasPrefix("GET /status HTTP/1.1") })

        // The daemon's own document type (HorgosAdminAPI): horgosctl decodes what horgosd encodes.
        let status = DaemonStatus(
            version: "1.2.3", serving: true, startedAt: Date(timeIntervalSince1970: 1_800_000_000), uptimeSeconds: 5,
            listeners: ["admin": "127.0.0.1:9477", "gbt32960": "127.0.0.1:7325"], connections: 3,
            connectionsByProtocol: ["native": 2, "gbt32960": 1],
            regions: [
                RegionStatus(region: "AE", state: "ok", queuedBytes: 0, recordsStored: 10, recordsDuplicate: 0,
                             recordsRejected: 0, eventsStored: 0, commits: 1, failedAttempts: 0),
                RegionStatus(region: "BR", state: "degraded", fault: "disk_full", queuedBytes: 512, recordsStored: 0,
                             recordsDuplicate: 0, recordsRejected: 0, eventsStored: 0, commits: 0, failedAttempts: 3),
            ])
        let encoded = String(decoding: try DaemonStatus.encoder().encode(status), as: UTF8.self)
        let typed = try OneShotHTTPServer(body: encoded, requests: 1)
        let summary = try await fixture.run(["status", "--admin", "http://127.0.0.1:\(typed.port)/"])
        #expect(summary.status == 0, "\(summary.stderr)")
        let fields = summary.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(fields.contains("listeners.gbt32960 127.0.0.1:7325"))
        #expect(fields.contains("connections.gbt32960 1"))
        #expect(fields.contains("serving true"))
        #expect(fields.contains { $0.hasPrefix("BR degraded 512 0 0 0 0") && $0.hasSuffix("disk_full -") })

        // Something that is not a status document is refused by name, not rendered as an empty table.
        let other = try OneShotHTTPServer(body: #"{"regions":["AE","BR"]}"#, requests: 1)
        let refused = try await fixture.run(["status", "--admin", "http://127.0.0.1:\(other.port)/"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("not a status document"))
    }
}

/// The partition file names of a region directory, sorted.
func partitionFiles(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { $0.hasPrefix("telemetry-") && $0.hasSuffix(".sqlite") }.sorted()
}

/// A loopback HTTP server answering `requests` connections with one chunked JSON response each.
final class OneShotHTTPServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var lines: [String] = []
    var requestLines: [String] { lock.withLock { lines } }

    init(body: String, requests: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        #expect(bound == 0 && listen(fd, 4) == 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listener = fd
        let thread = Thread { [self] in
            for _ in 0..<requests {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                let request = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self)
                lock.withLock { lines.append(String(request.split(separator: "\r\n").first ?? "")) }
                // Chunked, split in two chunks, as a NIO server may send it.
                let bytes = Array(body.utf8)
                let half = bytes.count / 2
                var response = Array(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".utf8)
                response += Array(String(half, radix: 16).utf8) + [13, 10] + bytes[..<half] + [13, 10]
                response += Array(String(bytes.count - half, radix: 16).utf8) + [13, 10] + bytes[half...] + [13, 10]
                response += Array("0\r\n\r\n".utf8)
                _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
            }
            close(listener)
        }
        thread.start()
    }
}

@Suite("horgosctl export memory")
struct ExportMemoryTests {
    /// GNU time (Debian package `time`) measures the peak RSS. Without it the test is skipped locally and
    /// fails in CI (`CI=true`; `.ci/run` installs it).
    static let time = "/usr/bin/time"

    @Test(
        "export streams: 200,000 rows need about the memory of 600 (peak RSS from GNU time)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: time) || ciRequiresHostTools, "needs GNU time at /usr/bin/time"))
    func exportMemoryIsFlat() async throws {
        let time = Self.time
        let fixture = try CtlFixture(regions: ["AE"])
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE"], nowMs: noon)
        for vehicle in 0..<200 {
            for frame in 0..<2 {
                let base = noon - 6 * 3_600_000 + Int64(frame * 500 * 20_000)
                let records = (0..<500).map { index in
                    var record = minuteRecords(1)[0]
                    record.timeOffsetMs = UInt32(index * 20_000)
                    return record
                }
                try await writer.store("AE", testVIN(vehicle), baseTimeMs: base, records)
            }
        }
        writer.stop()
        let binary = try #require(horgosctlPath())
        // stdout (the rows) to /dev/null; stderr (the row count, then GNU time's peak RSS in KiB) is kept.
        func peakKiB(_ from: String, _ to: String, rows: Int) async throws -> Int {
            let command = "\(time) -f %M \(binary) export --region AE --from \(from) --to \(to) --config "
                + "\(fixture.config) 2>&1 >/dev/null"
            let run = try await runProgram("/bin/bash", ["-c", command])
            #expect(run.status == 0, "\(run.stdout)")
            #expect(run.stdout.contains("exported \(rows) record(s)"), "\(run.stdout)")
            return Int(run.stdout.split(separator: "\n").last ?? "") ?? -1
        }
        let small = try await peakKiB("2026-11-29T06:00:00Z", "2026-11-29T06:01:00Z", rows: 600)
        let large = try await peakKiB("2026-11-29", "2026-11-30", rows: 200_000)
        #expect(small > 0 && large > 0)
        let file = try #require(
            try FileManager.default.attributesOfItem(atPath: fixture.state + "/AE/telemetry-2026-11-29.sqlite")[.size]
                as? Int)
        print("export peak RSS: 600 rows \(small) KiB, 200000 rows \(large) KiB, partition \(file / 1024) KiB")
        // Holding the rows would add about 24 MB (200,000 points plus their VIN strings), more than this
        // bound, which allows for the partition's pages that SQLite may map into the process.
        #expect(large - small < file / 1024 + 8 * 1024)
    }
}
