import Foundation
import HorgosNATS
import HorgosNATSTestSupport
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosStreamFormat
import HorgosTestSupport
import HorgosWire
import NIOCore
import NIOSSL
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 20's acceptance, end to end: real `horgosd` processes publishing their journal to a real 3-node
/// NATS JetStream cluster (Debian's nats-server 2.9.10), the simulator's ACK ledger compared with what
/// the stream holds. Serialized: each test runs a cluster and one or two daemons on 2 cores.
@Suite(.serialized) struct StreamEndToEndTests {
    @Test func aNormalRunPutsEveryAcknowledgedRecordOnTheStreamExactlyOnce() async throws {
        try await StreamTestBed.withDaemon(node: "a") { cluster, daemon in
            let ledger = AckLedger()
            let report = try await StreamTestBed.fleet(daemon, vehicles: 20, intervalMs: 200, ledger: ledger)
                .run(duration: .seconds(4), drainTimeout: .seconds(30))
            #expect(report.outstandingFrames == 0 && report.totals.recordsAcked == ledger.count && ledger.count > 100)
            try await StreamTestBed.waitUntilPublished(daemon)
            let entries = try await StreamTestBed.entries(cluster)
            StreamTestBed.expectStreamMatchesLedger(entries, ledger, exactCount: true)
            // Subjects, headers and the envelope say the same thing.
            for entry in entries.prefix(50) {
                #expect(entry.subject == "horgos.AE.telemetry")
                #expect(entry.messageID == "a:\(entry.record.lsn)" && entry.record.node == "a")
                #expect(
                    entry.record.region == "AE" && entry.record.`protocol` == .horgos && entry.record.formatVersion == 1
                )
            }
            // Operators see the publish lag: /health/CC, /metrics, /status and horgosctl status.
            let health = try await daemon.httpGet("/health/AE")
            #expect(health.status == 200 && health.body.contains("publish_lag_entries=0"), "\(health.body)")
            let metrics = try await daemon.httpGet("/metrics").body
            #expect(metrics.contains("horgos_stream_connected 1"))
            #expect(metrics.contains("horgos_stream_publish_lag_entries{region=\"AE\"} 0"))
            let table = try await DaemonEndToEndTests.runTool(
                "horgosctl", ["status", "--admin", "http://127.0.0.1:\(daemon.adminPort)"])
            #expect(table.status == 0 && table.stdout.contains("PUBLISH LAG"), "\(table.output)")
            #expect(table.stdout.contains("stream.published_lsn"), "\(table.output)")
            #expect(table.stdout.contains("stream.state") && table.stdout.contains("connected"), "\(table.output)")
            #expect(try await daemon.stop() == 0)
        }
    }

    /// `kill -9` of horgosd ten times while it publishes: after the last restart every acknowledged
    /// record is on the stream and no message id was delivered twice (the published-LSN file and
    /// JetStream's duplicate window). Each restart of a debug daemon takes seconds: ~40 s in all.
    @Test(.timeLimit(.minutes(5)))
    func killNineMidPublishTenTimesKeepsEveryAcknowledgedRecordOnTheStreamOnce() async throws {
        try await StreamTestBed.withDaemon(node: "a") { cluster, daemon in
            let ledger = AckLedger()
            let runner = try StreamTestBed.fleet(daemon, vehicles: 10, intervalMs: 50, ledger: ledger)
            async let report = runner.run(duration: .seconds(25), drainTimeout: .seconds(60))
            var kills = 0
            for _ in 0..<10 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 600...1400)))
                try await daemon.stop(signal: SIGKILL)
                kills += 1
                try await daemon.start()
            }
            let result = try await report
            #expect(kills == 10)
            #expect(result.outstandingFrames == 0, "every frame acknowledged in the end")
            try await StreamTestBed.waitUntilPublished(daemon)
            let entries = try await StreamTestBed.entries(cluster)
            // Units resent what a kill left unacknowledged: a second receipt of a frame is a second entry
            // (Proto/STREAM.md section 5), so records may appear twice, message ids never.
            StreamTestBed.expectStreamMatchesLedger(entries, ledger, exactCount: false)
            let lsns = entries.map(\.record.lsn)
            #expect(Set(lsns).count == lsns.count, "each journal entry once")
            #expect(try await daemon.stop() == 0)
        }
    }

    /// The stream's leader node killed under load (and started again): nothing lost, nothing twice.
    @Test func oneNATSNodeKilledUnderLoadLosesNothing() async throws {
        try await StreamTestBed.withDaemon(node: "a") { cluster, daemon in
            let ledger = AckLedger()
            let runner = try StreamTestBed.fleet(daemon, vehicles: 10, intervalMs: 50, ledger: ledger)
            async let report = runner.run(duration: .seconds(10), drainTimeout: .seconds(60))
            try await Task.sleep(for: .seconds(3))
            let leader = try await Self.streamLeader(cluster)
            let victim = cluster.nodes.first { $0.name == leader } ?? cluster.nodes[0]
            await cluster.stop(victim, signal: SIGKILL)
            try await Task.sleep(for: .seconds(4))
            try cluster.start(victim)
            let result = try await report
            #expect(result.outstandingFrames == 0)
            try await StreamTestBed.waitUntilPublished(daemon)
            StreamTestBed.expectStreamMatchesLedger(try await StreamTestBed.entries(cluster), ledger, exactCount: true)
            #expect(try await daemon.stop() == 0)
        }
    }

    /// `disk` mode with every NATS node stopped for 60 s under load (the issue's figure: the test needs
    /// the minute): ACKs go on, the lag shows on /status and /metrics, the backlog is published once the
    /// cluster is back, and nothing is lost.
    @Test(.timeLimit(.minutes(5)))
    func diskModeKeepsAcknowledgingThroughASixtySecondClusterOutage() async throws {
        try await StreamTestBed.withDaemon(node: "a") { cluster, daemon in
            let ledger = AckLedger()
            let runner = try StreamTestBed.fleet(daemon, vehicles: 10, intervalMs: 200, ledger: ledger)
            async let report = runner.run(duration: .seconds(70), drainTimeout: .seconds(60))
            try await Task.sleep(for: .seconds(3))
            for node in cluster.nodes { await cluster.stop(node, signal: SIGTERM) }
            let ackedAtOutage = ledger.count
            try await Task.sleep(for: .seconds(30))
            let lagging = try await StreamTestBed.status(daemon)
            #expect(ledger.count > ackedAtOutage + 100, "ACKs continued: \(ackedAtOutage) -> \(ledger.count)")
            #expect((lagging.regions.first { $0.region == "AE" }?.publishLagEntries ?? 0) > 100)
            #expect(lagging.stream?.state != "connected")
            try await Task.sleep(for: .seconds(30))
            for node in cluster.nodes { try cluster.start(node) }
            try await cluster.waitUntilReady(timeout: .seconds(60))
            let result = try await report
            #expect(result.outstandingFrames == 0)
            try await StreamTestBed.waitUntilPublished(daemon, timeout: .seconds(120))
            StreamTestBed.expectStreamMatchesLedger(try await StreamTestBed.entries(cluster), ledger, exactCount: true)
            #expect(try await daemon.stop() == 0)
        }
    }

    /// At `stream.max_lag_bytes` of unpublished entries the region's frames wait (backpressure: no ACK,
    /// sessions stop reading); once the stream is back they are taken, acknowledged and published.
    @Test func atMaxLagBytesTheRegionGetsBackpressureAndLosesNothing() async throws {
        try await StreamTestBed.withDaemon(node: "a", extra: ["HORGOS_STREAM_MAX_LAG_BYTES": "1048576"]) {
            cluster, daemon in
            for node in cluster.nodes { await cluster.stop(node, signal: SIGTERM) }
            let ledger = AckLedger()
            // Two gateways as fast as ACKs allow, 50 records a frame: ~2 KiB a journal entry.
            let runner = try StreamTestBed.fleet(
                daemon, vehicles: 40, intervalMs: 0, recordsPerFrame: 50, gateways: 2, ledger: ledger)
            async let report = runner.run(duration: .seconds(14), drainTimeout: .seconds(60))
            let held = try await StreamTestBed.waitForStatus(daemon, timeout: .seconds(30), "AE held back") {
                $0.regions.first { $0.region == "AE" }?.publishHeld == true
            }
            let lagBytes = held.regions.first { $0.region == "AE" }?.publishLagBytes ?? 0
            #expect(lagBytes >= 1_048_576 && lagBytes < 1_048_576 + 512 * 1024, "bounded near the limit: \(lagBytes)")
            // Rounds the journal took before the region closed still complete; then nothing more.
            try await Task.sleep(for: .seconds(1))
            let ackedWhenHeld = ledger.count
            try await Task.sleep(for: .seconds(3))
            #expect(
                ledger.count == ackedWhenHeld, "no ACK while the region is held: \(ackedWhenHeld) -> \(ledger.count)")
            let stillHeld = try await StreamTestBed.status(daemon).regions.first { $0.region == "AE" }
            #expect(stillHeld?.publishHeld == true && (stillHeld?.publishLagBytes ?? 0) < 1_048_576 + 512 * 1024)
            for node in cluster.nodes { try cluster.start(node) }
            let result = try await report
            #expect(result.outstandingFrames == 0, "everything held was taken and acknowledged afterwards")
            #expect(ledger.count > ackedWhenHeld)
            try await StreamTestBed.waitUntilPublished(daemon, timeout: .seconds(120))
            StreamTestBed.expectStreamMatchesLedger(try await StreamTestBed.entries(cluster), ledger, exactCount: true)
            #expect(try await daemon.stop() == 0)
        }
    }

    /// `replicated`: with two of three NATS nodes stopped the stream has no quorum and no ACK is sent
    /// (the frame waits, the connection stays); one node back and the ACK comes, and the record is on
    /// the stream and in the shards.
    @Test func replicatedHoldsAcksWithoutAQuorumAndResumesWhenANodeReturns() async throws {
        try await StreamTestBed.withDaemon(node: "r", durability: "replicated") { cluster, daemon in
            let vin = VIN("LSVAU2180N2183294")!
            let context = try Self.vehicleContext(daemon, vin: vin)
            let client = try await WireClient.connect(port: daemon.telemetryPort, context: context)
            try await client.send(WireClient.hello())
            _ = try await client.waitFor { !$0.isEmpty }
            let start = Int64(Date().timeIntervalSince1970 * 1000) - 60_000
            try await client.send(WireClient.telemetry(vin: vin, sequence: 1, startMs: start, records: 5))
            let first = try await client.waitFor(timeout: .seconds(20)) { $0.contains { $0.ack?.sequence == 1 } }
            #expect(first.contains { $0.ack?.sequence == 1 }, "with a quorum the ACK comes")

            await cluster.stop(cluster.nodes[1])
            await cluster.stop(cluster.nodes[2])
            try await client.send(WireClient.telemetry(vin: vin, sequence: 2, startMs: start + 10_000, records: 5))
            try await Task.sleep(for: .seconds(6))
            #expect(!client.replies.contains { $0.ack?.sequence == 2 }, "no ACK without a quorum")
            #expect(!client.isClosed, "the connection stays open: the unit resends nothing")
            let waiting = try await StreamTestBed.status(daemon)
            #expect((waiting.stream?.heldAcks ?? 0) >= 1, "the ACK is held: \(String(describing: waiting.stream))")

            try cluster.start(cluster.nodes[1])
            let resumed = try await client.waitFor(timeout: .seconds(60)) { $0.contains { $0.ack?.sequence == 2 } }
            #expect(resumed.contains { $0.ack?.sequence == 2 }, "the ACK resumes with the quorum")
            try await StreamTestBed.waitUntilPublished(daemon)
            let entries = try await StreamTestBed.entries(cluster)
            let times = Set(entries.flatMap(\.timestamps))
            let sent = (0..<10).map { start + ($0 < 5 ? Int64($0) * 1000 : 10_000 + Int64($0 - 5) * 1000) }
            #expect(Set(sent).isSubset(of: times), "both frames on the stream")
            try await StreamTestBed.waitForStatus(daemon, "both frames applied") {
                ($0.regions.first { $0.region == "AE" }?.recordsStored ?? 0) == 10
            }
            await client.close()
            #expect(try await daemon.stop() == 0)
        }
    }

    /// Fails if `replicated` acknowledged before JetStream's acknowledgement: a proxy holds everything
    /// the (only) NATS server sends to horgosd while the server still receives and stores the publish.
    /// The unit gets no ACK while the PubAck is held, and gets it once the proxy lets the PubAck through.
    @Test func replicatedNeverAcknowledgesBeforeJetStreamsAcknowledgement() async throws {
        guard let cluster = try await StreamTestBed.cluster(size: 1) else { return }
        defer { cluster.shutdown() }
        let proxy = try await TCPProxy.start(targetPort: cluster.nodes[0].clientPort)
        defer { proxy.close() }
        let daemon = try DaemonProcess(
            environment: StreamTestBed.environment(
                servers: "nats://127.0.0.1:\(proxy.port)", node: "p", durability: "replicated",
                extra: ["HORGOS_STREAM_REPLICAS": "1", "HORGOS_STREAM_ACK_TIMEOUT_MS": "30000"]))
        defer { daemon.removeState() }
        try await daemon.start()
        let vin = VIN("LSVAU2180N2183294")!
        let client = try await WireClient.connect(
            port: daemon.telemetryPort, context: try Self.vehicleContext(daemon, vin: vin))
        try await client.send(WireClient.hello())
        _ = try await client.waitFor { !$0.isEmpty }
        let start = Int64(Date().timeIntervalSince1970 * 1000) - 60_000
        try await client.send(WireClient.telemetry(vin: vin, sequence: 1, startMs: start, records: 1))
        _ = try await client.waitFor(timeout: .seconds(20)) { $0.contains { $0.ack?.sequence == 1 } }

        proxy.holdServerToClient()
        try await client.send(WireClient.telemetry(vin: vin, sequence: 2, startMs: start + 1000, records: 1))
        // The server stores the message (its PubAck waits in the proxy) ...
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        var stored = 0
        while clock.now < deadline && stored < 2 {
            stored = (try? await StreamTestBed.entries(cluster).count) ?? 0
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(stored == 2, "JetStream stored the second entry")
        try await Task.sleep(for: .seconds(1))
        // ... and the unit has no ACK: the journal round was durable long ago, the stream's ack is held.
        #expect(!client.replies.contains { $0.ack?.sequence == 2 }, "ACK sent before JetStream's acknowledgement")
        #expect(proxy.control.heldBytes > 0)
        proxy.release()
        let acked = try await client.waitFor(timeout: .seconds(20)) { $0.contains { $0.ack?.sequence == 2 } }
        #expect(acked.contains { $0.ack?.sequence == 2 })
        await client.close()
        #expect(try await daemon.stop() == 0)
    }

    /// The Python consumer written from Proto/STREAM.md alone (Proto/stream/examples/consume.py, nats-py
    /// and protobuf) decodes a run's native and GB/T 32960 records and matches `horgosctl export` field
    /// for field.
    @Test func thePythonConsumerMatchesHorgosctlExportFieldForField() async throws {
        guard try await Self.pythonConsumerAvailable() else { return }
        try await StreamTestBed.withDaemon(clusterSize: 1, node: "py", extra: ["HORGOS_STREAM_REPLICAS": "1"]) {
            cluster, daemon in
            let ledger = AckLedger()
            let native = try StreamTestBed.fleet(daemon, vehicles: 8, intervalMs: 200, ledger: ledger)
            var gbtSettings = GBT32960FleetSettings()
            gbtSettings.port = daemon.gbt32960Port
            gbtSettings.vehicles = 4
            gbtSettings.intervalMs = 300
            gbtSettings.regions = [SimulatedRegion.named("AE")!]
            let gbt = GBT32960FleetRunner(
                settings: gbtSettings, credentials: try PKIFleetCredentials(authority: try daemon.authority()),
                threads: 1)
            async let nativeReport = native.run(duration: .seconds(3), drainTimeout: .seconds(20))
            async let gbtReport = gbt.run(duration: .seconds(3), drainTimeout: .seconds(20))
            let (n, g) = try await (nativeReport, gbtReport)
            #expect(n.outstandingFrames == 0 && g.outstandingFrames == 0 && g.framesAnswered > 0)
            try await StreamTestBed.waitUntilPublished(daemon)
            try await StreamTestBed.waitForStatus(daemon, "every record applied") { status in
                let ae = status.regions.first { $0.region == "AE" }
                return (ae?.recordsStored ?? 0) + (ae?.recordsDuplicate ?? 0) >= n.totals.recordsAcked
                    + g.framesAnswered
            }
            #expect(try await daemon.stop() == 0)
            let formatter = ISO8601DateFormatter()
            let export = try await DaemonEndToEndTests.runTool(
                "horgosctl",
                [
                    "export", "--state", daemon.stateDirectory, "--region", "AE", "--format", "jsonl",
                    "--from", formatter.string(from: Date().addingTimeInterval(-86_400)),
                    "--to", formatter.string(from: Date().addingTimeInterval(86_400)),
                ])
            #expect(export.status == 0, "\(export.stderr)")
            let exportFile = daemon.stateDirectory + "/export.jsonl"
            try export.stdout.write(toFile: exportFile, atomically: true, encoding: .utf8)
            let consumer = try await Self.runPython([
                DaemonProcess.repositoryRoot.appendingPathComponent("Proto/stream/examples/consume.py").path,
                "--servers", cluster.urls, "--subject", "horgos.AE.>", "--compare", exportFile,
            ])
            struct Summary: Decodable {
                var compared: Int
                var missing: Int
                var extra: Int
                var mismatches: Int
                var duplicateMessageIds: Int
                var nativeSamples: Int
                var gbt32960Samples: Int
            }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let line = consumer.stdout.split(separator: "\n").last.map(String.init) ?? ""
            let summary = try #require(try? decoder.decode(Summary.self, from: Data(line.utf8)), "\(consumer.output)")
            #expect(consumer.status == 0, "\(consumer.output)")
            #expect(summary.missing == 0 && summary.extra == 0 && summary.mismatches == 0, "\(line)")
            #expect(summary.nativeSamples > 0 && summary.gbt32960Samples > 0, "both protocols: \(line)")
            #expect(summary.compared == export.stdout.split(separator: "\n").count)
            #expect(summary.duplicateMessageIds == 0)
        }
    }

    // MARK: helpers

    static func vehicleContext(_ daemon: DaemonProcess, vin: VIN) throws -> NIOSSLContext {
        let authority = try daemon.authority()
        return try WireClient.context(
            issued: try authority.issueVehicleCertificate(vin: vin.description, market: "AE"),
            caPEM: try authority.caCertificatePEM)
    }

    /// The server name of the stream's Raft leader.
    static func streamLeader(_ cluster: NATSCluster) async throws -> String? {
        guard let node = cluster.nodes.first(where: \.isRunning) else { return nil }
        let answer = try await NATSTestClient.request(
            url: node.url, subject: "$JS.API.STREAM.INFO.HORGOS", timeout: .seconds(5))
        let json = try JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]
        return (json?["cluster"] as? [String: Any])?["leader"] as? String
    }

    /// python3 with nats-py, protobuf and grpcio-tools (.ci/run installs them); records a failure when not.
    static func pythonConsumerAvailable() async throws -> Bool {
        let check = try await runPython(["-c", "import nats, google.protobuf, grpc_tools"])
        guard check.status == 0 else {
            Issue.record(
                Comment(
                    rawValue: "python3 with nats-py, protobuf and grpcio-tools is needed (pip install nats-py "
                        + "protobuf grpcio-tools; .ci/run installs them): \(check.output)"))
            return false
        }
        return true
    }

    static func runPython(_ arguments: [String]) async throws -> DaemonEndToEndTests.ToolRun {
        try await offThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3"] + arguments
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let errorData = LockedBytes()
            let reader = Thread { errorData.set(errors.fileHandleForReading.readDataToEndOfFile()) }
            reader.start()
            let out = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            while !errorData.isSet { usleep(1000) }
            return DaemonEndToEndTests.ToolRun(
                status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                stderr: String(decoding: errorData.value, as: UTF8.self))
        }
    }
}

/// Bytes one thread sets and another reads.
final class LockedBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}
