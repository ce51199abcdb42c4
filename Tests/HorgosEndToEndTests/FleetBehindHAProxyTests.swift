import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import Synchronization
import HorgosTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several nodes behind a real HAProxy (issue 14, items 1 and 2): SNI routing to the node that owns
/// the region, PROXY protocol v2 to the node, per-region health checks, the shipped configuration.
extension DaemonEndToEndTests {
    /// The domain of the test's SNI names (`ae.telemetry.horgos.test`).
    static let fleetDomain = "horgos.test"

    /// A CA and a server certificate for `*.telemetry.<domain>` that both nodes use.
    static func makeFleetPKI() throws -> (directory: String, environment: [String: String]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-fleet-pki-\(UUID())").path
        let authority = try FleetPKI.createCertificateAuthority()
        try authority.write(certificatePath: directory + "/ca.pem", privateKeyPath: directory + "/ca-key.pem")
        let server = try authority.issueServerCertificate(names: ["*.telemetry.\(fleetDomain)"])
        try server.write(certificatePath: directory + "/server.pem", privateKeyPath: directory + "/server-key.pem")
        return (
            directory,
            [
                "HORGOS_TLS_CA_CERTIFICATE": directory + "/ca.pem",
                "HORGOS_TLS_SERVER_CERTIFICATE": directory + "/server.pem",
                "HORGOS_TLS_SERVER_KEY": directory + "/server-key.pem",
                "HORGOS_LISTEN_PROXY_PROTOCOL": "v2",
            ]
        )
    }

    /// Where Debian puts haproxy; nil when it is not installed.
    static var haproxyPath: String? {
        ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    @Test func haproxyRoutesEachRegionToItsNodeOnlyAndTheNodesSeeTheVehiclesAddress() async throws {
        guard let haproxy = Self.haproxyPath else {
            Issue.record("haproxy is not installed: apt-get install haproxy (.ci/run installs it)")
            return
        }
        let pki = try Self.makeFleetPKI()
        defer { try? FileManager.default.removeItem(atPath: pki.directory) }
        let nodeA = try DaemonProcess(environment: pki.environment.merging(["HORGOS_REGIONS": "AE,SA"]) { $1 })
        let nodeB = try DaemonProcess(environment: pki.environment.merging(["HORGOS_REGIONS": "MX,BR"]) { $1 })
        defer {
            nodeA.removeState()
            nodeB.removeState()
        }
        try await nodeA.start()
        try await nodeB.start()
        let balancer = try HAProxyProcess(
            executable: haproxy, domain: Self.fleetDomain, nodes: [nodeA, nodeB], source: "127.0.0.2")
        try await balancer.start()
        defer { balancer.stop() }

        // Per-region health as HAProxy asks for it; /health keeps meaning "the process serves".
        #expect(try await nodeA.httpGet("/health/AE").status == 200)
        #expect(try await nodeA.httpGet("/health/MX").status == 404)
        #expect(try await nodeB.httpGet("/health/mx").status == 200)
        #expect(try await nodeB.httpGet("/health").status == 200)
        try await balancer.waitUntilChecksPass(timeout: .seconds(30))

        // The real simulator, one SNI name per vehicle's market, through the balancer.
        let simulator = Process()
        simulator.executableURL = DaemonProcess.productsDirectory.appendingPathComponent("horgos-sim")
        simulator.arguments = [
            "--host", "127.0.0.1", "--port", "\(balancer.port)", "--sni-domain", Self.fleetDomain,
            "--pki", pki.directory, "--vehicles", "40", "--regions", "AE,SA,MX,BR", "--interval-ms", "300",
            "--duration", "6", "--backoff-ms", "200", "--json", "--quiet",
        ]
        let output = Pipe()
        simulator.standardOutput = output
        simulator.standardError = FileHandle.nullDevice
        try simulator.run()
        // The blocking read on a thread of its own (a detached task would hold a cooperative thread).
        let reading = Task { try await offThePool { output.fileHandleForReading.readDataToEndOfFile() } }
        // While the fleet is connected, each node lists the connections' client addresses.
        var seenA: Set<String> = []
        var seenB: Set<String> = []
        while simulator.isRunning {
            seenA.formUnion(try await Self.clientAddresses(nodeA))
            seenB.formUnion(try await Self.clientAddresses(nodeB))
            try await Task.sleep(for: .milliseconds(250))
        }
        let data = try await reading.value
        #expect(simulator.terminationStatus == 0, "\(String(decoding: data, as: UTF8.self))")
        let report = try JSONDecoder().decode(FleetReport.self, from: data)
        #expect(report.totals.errors.isEmpty, "no unit was refused (UNKNOWN_MARKET would mean misrouted)")
        #expect(report.outstandingFrames == 0)
        #expect(report.totals.recordsAcked > 0)

        #expect(seenA == ["127.0.0.1"], "node A saw the simulator's address, not HAProxy's source 127.0.0.2")
        #expect(seenB == ["127.0.0.1"], "node B saw the simulator's address, not HAProxy's source 127.0.0.2")

        // Every acknowledged record is on the node that owns its region, and nowhere else. Polled
        // for a few seconds: with an ingest journal, shards follow the ACK within the apply interval.
        var rowsA: [String: Int] = [:]
        var rowsB: [String: Int] = [:]
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(15)
        repeat {
            rowsA = try storedRows(nodeA)
            rowsB = try storedRows(nodeB)
            if rowsA.values.reduce(0, +) + rowsB.values.reduce(0, +) >= report.totals.recordsAcked { break }
            try await Task.sleep(for: .milliseconds(200))
        } while clock.now < deadline
        #expect(Set(rowsA.keys) == ["AE", "SA"], "node A holds its regions only: \(rowsA)")
        #expect(Set(rowsB.keys) == ["MX", "BR"], "node B holds its regions only: \(rowsB)")
        #expect(rowsA.values.reduce(0, +) + rowsB.values.reduce(0, +) == report.totals.recordsAcked)

        // A client that skips the balancer (TLS straight to the node) is closed before TLS and counted.
        let handshakeFailuresBefore = Self.sample(
            try await nodeA.httpGet("/metrics").body, "horgos_refusals_total{protocol=\"native\",code=\"TLS_HANDSHAKE_FAILED\"}")
        let direct = try RawSocket.connect(port: nodeA.telemetryPort)
        defer { close(direct) }
        RawSocket.send(direct, [0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03])
        var closed = false
        for _ in 0..<100 where !closed {
            closed = RawSocket.isClosedByPeer(direct)
            if !closed { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(closed)
        let metrics = try await nodeA.httpGet("/metrics").body
        #expect(metrics.contains("horgos_proxy_header_rejected_total{reason=\"bad_signature\"} 1"))
        #expect(
            Self.sample(metrics, "horgos_refusals_total{protocol=\"native\",code=\"TLS_HANDSHAKE_FAILED\"}") == handshakeFailuresBefore,
            "the bytes never reached TLS")

        // One fleet-wide view: both nodes' regions in one table with a node column; a dead node is a
        // row of its own and makes the exit status 3.
        let dead = "http://127.0.0.1:\(try DaemonProcess.freePort())"
        let nodeArguments = [
            "--node", "http://127.0.0.1:\(nodeA.adminPort)", "--node", "http://127.0.0.1:\(nodeB.adminPort)",
            "--node", dead,
        ]
        let fleet = try await Self.runTool("horgosctl", ["fleet", "--json"] + nodeArguments)
        #expect(fleet.status == 3, "\(fleet.output)")
        struct FleetView: Decodable {
            struct Row: Decodable {
                struct Health: Decodable {
                    var region: String
                    var vehiclesTotal: Int
                }
                var node: String
                var reachable: Bool
                var health: Health?
            }
            var rows: [Row]
        }
        let merged = try JSONDecoder().decode(FleetView.self, from: Data(fleet.stdout.utf8))
        let byRegion = Dictionary(
            merged.rows.compactMap { row in row.health.map { ($0.region, row.node) } }, uniquingKeysWith: { a, _ in a })
        #expect(byRegion["AE"] == "http://127.0.0.1:\(nodeA.adminPort)")
        #expect(byRegion["MX"] == "http://127.0.0.1:\(nodeB.adminPort)")
        #expect(Set(byRegion.keys) == ["AE", "SA", "MX", "BR"])
        #expect(merged.rows.contains { $0.node == dead && !$0.reachable })
        #expect(merged.rows.compactMap(\.health).reduce(0) { $0 + $1.vehiclesTotal } == 40)
        let status = try await Self.runTool("horgosctl", ["status"] + nodeArguments)
        #expect(status.status == 3)
        #expect(status.output.contains("unreachable"))
        #expect(status.output.contains("MX") && status.output.contains("AE"))

        #expect(try await nodeA.stop() == 0)
        #expect(try await nodeB.stop() == 0)
    }

    /// The value of one series in a Prometheus text scrape (nil when absent).
    static func sample(_ scrape: String, _ series: String) -> Double? {
        for line in scrape.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// The `clientAddresses` of a node's `/status`.
    static func clientAddresses(_ node: DaemonProcess) async throws -> Set<String> {
        struct Status: Decodable {
            struct Entry: Decodable { var address: String }
            var clientAddresses: [Entry]
        }
        let body = try await node.httpGet("/status").body
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return Set(try decoder.decode(Status.self, from: Data(body.utf8)).clientAddresses.map(\.address))
    }
}

/// HAProxy run in the foreground with the shipped `Deploy/haproxy/horgos.cfg`, its addresses from the
/// environment as the file documents: node A and B of the test stand in for the nodes it names.
final class HAProxyProcess: @unchecked Sendable {
    let port: Int
    let statsPort: Int
    private let process = Process()
    private let output = LineBuffer()

    init(executable: String, domain: String, nodes: [DaemonProcess], source: String) throws {
        port = try DaemonProcess.freePort()
        statsPort = try DaemonProcess.freePort()
        let configuration = DaemonProcess.repositoryRoot.appendingPathComponent("Deploy/haproxy/horgos.cfg").path
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-db", "-f", configuration, "-f", Self.statsConfiguration(port: 0)]
        var environment = ProcessInfo.processInfo.environment
        environment["HORGOS_HAPROXY_BIND"] = "127.0.0.1:\(port)"
        environment["HORGOS_HAPROXY_SOURCE"] = source
        environment["HORGOS_HAPROXY_MAXCONN"] = "2000"
        environment["HORGOS_DOMAIN"] = domain
        environment["HORGOS_STATS_BIND"] = "127.0.0.1:\(statsPort)"
        for (name, node) in zip(["A", "B"], nodes) {
            environment["HORGOS_NODE_\(name)_TELEMETRY"] = "127.0.0.1:\(node.telemetryPort)"
            environment["HORGOS_NODE_\(name)_ADMIN_HOST"] = "127.0.0.1"
            environment["HORGOS_NODE_\(name)_ADMIN_PORT"] = "\(node.adminPort)"
        }
        process.environment = environment
    }

    /// A second configuration file with a stats page, so the test can see the health checks' verdicts.
    static func statsConfiguration(port: Int) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-haproxy-stats.cfg").path
        let text = """
            frontend stats
                mode http
                bind "${HORGOS_STATS_BIND}"
                stats enable
                stats uri /stats

            """
        try? text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    var log: String { output.lines.withLock { $0.joined(separator: "\n") } }

    func start() async throws {
        _ = output.collect(from: process)
        try process.run()
        for _ in 0..<200 {
            if !process.isRunning { throw HarnessError("haproxy exited:\n" + log) }
            if let fd = try? RawSocket.connect(port: port) {
                close(fd)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("haproxy did not listen:\n" + log)
    }

    /// Waits until the stats page shows every region backend's server UP.
    func waitUntilChecksPass(timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = ""
        while clock.now < deadline {
            last = (try? await DaemonProcess.httpGet(host: "127.0.0.1", port: statsPort, path: "/stats;csv").body) ?? ""
            let rows = last.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            let up = rows.filter { $0.count > 17 && ["be_ae", "be_sa", "be_mx", "be_br"].contains(String($0[0])) }
                .filter { $0[1] != "BACKEND" && $0[17] == "UP" }
            if up.count == 4 { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("HAProxy's checks did not pass:\n\(last)\n\(log)")
    }

    /// Sends SIGTERM and returns (a `defer` cannot await; Foundation reaps the child when it exits).
    func stop() {
        if process.isRunning { process.terminate() }
    }
}
