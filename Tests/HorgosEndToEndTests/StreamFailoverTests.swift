import Foundation
import HorgosNATSTestSupport
import HorgosSimulator
import HorgosStore
import HorgosWire
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Failover behind a real HAProxy (the issue-14 setup with the shipped configuration, whose region
/// backends list the other node as `backup`): node A owns AE, node B follows AE from the stream. A is
/// killed with `kill -9` under vehicle load; HAProxy's `/health/AE` check sends the vehicles to B, which
/// ingests them itself; every record in the vehicles' ACK ledger is then found in B's shards.
extension StreamEndToEndTests {
    struct FailoverFigures {
        /// Acknowledged records not on the standby when the vehicles finished (before A is read again).
        var recoveryPointRecords: Int
        /// The longest time without any ACK around the kill (the vehicles' view of the failover).
        var recoveryTimeSeconds: Double
    }

    /// Two nodes (A owns AE, B follows it; both follow AE so either catches up from the other), HAProxy in
    /// front; A killed 4 s into 16 s of traffic. Each phase waits for a condition (HAProxy's checks every
    /// 2 s, two failures to mark A down): ~45 s.
    func failover(durability: String) async throws -> FailoverFigures? {
        guard let haproxy = DaemonEndToEndTests.haproxyPath else {
            Issue.record("haproxy is not installed: apt-get install haproxy (.ci/run installs it)")
            return nil
        }
        guard let cluster = try await StreamTestBed.cluster() else { return nil }
        defer { cluster.shutdown() }
        let pki = try DaemonEndToEndTests.makeFleetPKI()
        defer { try? FileManager.default.removeItem(atPath: pki.directory) }
        // disk: A reaches NATS through a proxy that will stop its publishes 2 s before the kill, so A dies
        // holding acknowledged records the stream does not have (its publish lag, the recovery point).
        let proxy = durability == "disk" ? try await TCPProxy.start(targetPort: cluster.nodes[0].clientPort) : nil
        defer { proxy?.close() }
        func environment(_ node: String, servers: String) -> [String: String] {
            pki.environment.merging(
                StreamTestBed.environment(
                    servers: servers, node: node, durability: durability, regions: "AE",
                    extra: ["HORGOS_FOLLOW_REGIONS": "AE"])
            ) { $1 }
        }
        let nodeA = try DaemonProcess(
            environment: environment("a", servers: proxy.map { "nats://127.0.0.1:\($0.port)" } ?? cluster.urls))
        let nodeB = try DaemonProcess(environment: environment("b", servers: cluster.urls))
        defer {
            nodeA.removeState()
            nodeB.removeState()
        }
        try await nodeA.start()
        try await nodeB.start()
        for node in [nodeA, nodeB] {
            try await StreamTestBed.waitForStatus(node, "AE caught up") {
                $0.regions.first { $0.region == "AE" }?.followState == "following"
            }
        }
        let balancer = try HAProxyProcess(
            executable: haproxy, domain: DaemonEndToEndTests.fleetDomain, nodes: [nodeA, nodeB], source: "127.0.0.2")
        try await balancer.start()
        defer { balancer.stop() }
        try await balancer.waitUntil(
            backend: "be_ae", servers: ["node-a": "UP", "node-b": "UP"], timeout: .seconds(30))

        let ledger = AckLedger()
        let runner = try StreamTestBed.fleet(
            nodeA, port: balancer.port, vehicles: 20, intervalMs: 200, ledger: ledger,
            sniDomain: DaemonEndToEndTests.fleetDomain, authority: FleetPKICredentialsSource(directory: pki.directory))
        async let report = runner.run(duration: .seconds(16), drainTimeout: .seconds(60))
        try await Task.sleep(for: .seconds(4))
        if let proxy {
            proxy.holdClientToServer()
            try await Task.sleep(for: .seconds(2))
        }
        let killedAt = DispatchTime.now().uptimeNanoseconds
        try await nodeA.stop(signal: SIGKILL)
        proxy?.release()
        let result = try await report
        #expect(result.outstandingFrames == 0, "the vehicles reconnected to B and every frame was acknowledged")
        let acknowledgedOnA = ledger.acknowledgementTimesNs.filter { $0 < killedAt }.count
        #expect(acknowledgedOnA > 0 && ledger.acknowledgementTimesNs.count > acknowledgedOnA, "ACKs before and after")

        // Recovery time: the longest stretch without an ACK from the kill on.
        let times = ledger.acknowledgementTimesNs.sorted()
        var gap: UInt64 = 0
        var previous = killedAt
        for time in times where time >= killedAt {
            gap = max(gap, time - previous)
            previous = time
        }
        // Recovery point: what B lacks of the ledger now (before A's journal is read again).
        try await Task.sleep(for: .seconds(2))
        let missing = try Self.missingOnNode(nodeB, ledger)
        let figures = FailoverFigures(recoveryPointRecords: missing, recoveryTimeSeconds: Double(gap) / 1e9)
        print(
            "failover (\(durability)): recovery point \(missing) records, recovery time "
                + "\(figures.recoveryTimeSeconds) s, \(ledger.count) acknowledged")
        if durability == "disk" {
            // The owner's journal is read again: its unpublished entries reach the stream, so B; A
            // catches up with what B took meanwhile before /health/AE says 200.
            try await nodeA.start()
            try await StreamTestBed.waitUntilPublished(nodeA)
            try await StreamTestBed.waitForStatus(nodeA, "A caught up") {
                $0.regions.first { $0.region == "AE" }?.followState == "following"
            }
            #expect(try await nodeA.httpGet("/health/AE").status == 200)
            try await Self.waitUntilNodeHolds(nodeA, ledger)
        }
        try await Self.waitUntilNodeHolds(nodeB, ledger)
        if durability == "disk" { #expect(try await nodeA.stop() == 0) }
        #expect(try await nodeB.stop() == 0)
        return figures
    }

    @Test(.timeLimit(.minutes(5)))
    func replicatedFailoverBehindHAProxyLosesNoAcknowledgedRecord() async throws {
        guard let figures = try await failover(durability: "replicated") else { return }
        #expect(figures.recoveryPointRecords == 0, "replicated: every ACKed record was on the stream, so on B")
    }

    @Test(.timeLimit(.minutes(5)))
    func diskFailoverBehindHAProxyRecoversTheRestOnceTheOwnersJournalIsReadAgain() async throws {
        guard let figures = try await failover(durability: "disk") else { return }
        #expect(figures.recoveryPointRecords > 0, "disk: A died with acknowledged records only on its disk")
    }

    /// Acknowledged records of the ledger not in `node`'s shards.
    static func missingOnNode(_ node: DaemonProcess, _ ledger: AckLedger) throws -> Int {
        let reader = ShardReader(stateDirectory: node.stateDirectory, region: Region("AE")!)
        var missing = 0
        for (vin, times) in ledger.entries {
            guard let v = HorgosWire.VIN(vin) else { continue }
            let stored = Set(try reader.track(v, fromMs: 0, toMs: .max).map(\.timestampMs))
            missing += times.subtracting(stored).count
        }
        return missing
    }

    static func waitUntilNodeHolds(_ node: DaemonProcess, _ ledger: AckLedger) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        var missing = Int.max
        while clock.now < deadline {
            missing = (try? missingOnNode(node, ledger)) ?? Int.max
            if missing == 0 { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(missing == 0, "\(missing) acknowledged records missing on \(node.stateDirectory)")
    }
}

extension HAProxyProcess {
    /// Waits until the stats page shows `backend`'s servers in the given states.
    func waitUntil(backend: String, servers: [String: String], timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = ""
        while clock.now < deadline {
            last = (try? await DaemonProcess.httpGet(host: "127.0.0.1", port: statsPort, path: "/stats;csv").body) ?? ""
            var states: [String: String] = [:]
            for row in last.split(separator: "\n") {
                let fields = row.split(separator: ",", omittingEmptySubsequences: false)
                if fields.count > 17 && fields[0] == backend { states[String(fields[1])] = String(fields[17]) }
            }
            if servers.allSatisfy({ states[$0.key]?.hasPrefix($0.value) == true }) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("HAProxy's \(backend) did not reach \(servers):\n\(last)\n\(log)")
    }
}
