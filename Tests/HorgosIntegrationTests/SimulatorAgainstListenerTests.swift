import HorgosStore
import Foundation
import HorgosPKI
import HorgosServer
import HorgosSimulator
import HorgosStore
import HorgosWire
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// A sink that commits at once and remembers every stored record's (VIN, timestamp).
final class RecordingSink: IngestSink {
    let seen = Mutex<[String: Int]>([:])
    let records = Atomic<Int>(0)
    let commitDelay: Duration?

    init(commitDelay: Duration? = nil) { self.commitDelay = commitDelay }

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        let (vin, keys) = submission.payload.withUnsafeReadableBytes { raw -> (String, [Int64]) in
            guard let batch = try? TelemetryBatchView(payload: raw) else { return ("", []) }
            return (batch.vin.description, (0..<batch.count).map { batch[$0].timestampMs })
        }
        var duplicates = 0
        seen.withLock { seen in
            for key in keys {
                let id = "\(vin)@\(key)"
                if seen[id] != nil { duplicates += 1 } else { seen[id] = 1 }
            }
        }
        records.add(keys.count - duplicates, ordering: .relaxed)
        let outcome = CommitOutcome(stored: keys.count - duplicates, duplicates: duplicates, rejected: 0)
        if let commitDelay {
            Task {
                try? await Task.sleep(for: commitDelay)
                submission.completion(outcome)
            }
        } else {
            submission.completion(outcome)
        }
    }
}

/// Starts the real listener pipeline (TLS, decoder, sessions) with a recording sink.
struct ListenerFixture {
    let listener: Listener<NativeProtocol>
    let port: Int
    let authority: FleetPKI
    let sink: RecordingSink
    let flows: [String: RegionFlowControl]

    static func start(sink: RecordingSink = RecordingSink(), regions: [String] = SimulatedRegion.all.map(\.code),
                      storage: (any IngestSink)? = nil, highWatermark: Int = 1 << 22, lowWatermark: Int = 1 << 21,
                      ackWindow: Int = 32) async throws -> ListenerFixture
    {
        let authority = try FleetPKI.createCertificateAuthority(commonName: "test CA")
        let server = try authority.issueServerCertificate()
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: try server.certificateDER, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(server.privateKeyPEM.utf8), format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(try authority.caCertificatePEM.utf8),
                                                              format: .pem)])
        // The process-wide group, as in the daemon: never shut down, so nothing the listener still owns when it
        // goes away (its quiescing helper fails a promise in its deinit) lands on a loop that is gone.
        let group = MultiThreadedEventLoopGroup.singleton
        var flows: [String: RegionFlowControl] = [:]
        for region in regions {
            flows[region] = RegionFlowControl(region: region, highWatermark: highWatermark, lowWatermark: lowWatermark)
        }
        let metrics = PipelineMetrics(protocolName: NativeProtocol.name)
        let environment = PipelineEnvironment(
            wireProtocol: NativeProtocol(
                limits: SessionLimits(ackWindow: ackWindow), regions: regions, logger: Logger(label: "listener-test")),
            admit: { certificate in
                guard let certificate, let identity = try? PeerIdentity(derEncoded: try certificate.toDERBytes())
                else { return .failure(SessionRefusal(code: .identityInvalid, reason: "no identity")) }
                return .success(identity)
            },
            regions: RegionHandle.table(flows: flows, sink: storage ?? sink, metrics: metrics), metrics: metrics,
            maxInFlight: .max, now: { Int64(Date().timeIntervalSince1970 * 1000) },
            logger: Logger(label: "listener-test"))
        let listener = Listener(
            configuration: .init(name: "telemetry", socket: .address(ListenAddress(host: "127.0.0.1", port: 0))),
            tls: ReloadableTLSContext(try NIOSSLContext(configuration: tls)),
            registry: ConnectionRegistry(maxConnections: 10_000, maxPerAddress: 10_000), environment: environment,
            group: group)
        let address = try await listener.start()
        return ListenerFixture(listener: listener, port: address.port!, authority: authority, sink: sink,
                               flows: flows)
    }

    func stop() async throws {
        await listener.drain(timeout: .seconds(5))
    }
}

@Suite struct SimulatorAgainstListenerTests {
    @Test func vehicleModeEveryGeneratedRecordIsAckedOnce() async throws {
        let fixture = try await ListenerFixture.start()
        let plan = FleetPlan(mode: .vehicles, vehicleCount: 20, seed: 3)
        let settings = FleetSettings(port: fixture.port, reportIntervalMs: 100, recordsPerFrame: 2)
        let runner = FleetRunner(plan: plan, settings: settings,
                                 credentials: try PKIFleetCredentials(authority: fixture.authority), threads: 1)
        let report = try await runner.run(duration: .seconds(2))
        #expect(report.totals.errors.isEmpty)
        #expect(report.outstandingFrames == 0)
        #expect(report.totals.recordsAcked > 0)
        // Every generated record that made a whole frame was acknowledged, and stored exactly once.
        #expect(report.totals.recordsAcked == fixture.sink.records.load(ordering: .relaxed))
        #expect(report.totals.peakConnected == 20)
        try await fixture.stop()
    }

    @Test func gatewayModeWithChurnResendsAndNothingIsLostOrDuplicated() async throws {
        let fixture = try await ListenerFixture.start(sink: RecordingSink(commitDelay: .milliseconds(20)))
        let plan = FleetPlan(mode: .gateways(3), vehicleCount: 60, seed: 5)
        var settings = FleetSettings(port: fixture.port, reportIntervalMs: 0, recordsPerFrame: 10)
        settings.initialBackoffMs = 50
        let runner = FleetRunner(plan: plan, settings: settings,
                                 credentials: try PKIFleetCredentials(authority: fixture.authority), threads: 1)
        // Drop every connection about twice a second: units must resend what was not acknowledged.
        let report = try await runner.run(duration: .seconds(3), churnPerMinute: 120)
        #expect(report.totals.errors.isEmpty)
        #expect(report.outstandingFrames == 0)
        #expect(report.totals.disconnects > 0)
        // Acked records are all in storage; resent ones were recognised there as duplicates.
        #expect(report.totals.recordsAcked == report.totals.recordsGenerated)
        #expect(fixture.sink.records.load(ordering: .relaxed) == report.totals.recordsGenerated)
        try await fixture.stop()
    }
}

@Suite struct SimulatorIntoShardsTests {
    @Test func everyAcknowledgedRecordIsInItsRegionsShardAndNowhereElse() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-int-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let regions = ["AE", "MX", "TH"]
        let store = try ShardStore(configuration: StoreConfiguration(
            stateDirectory: state, regions: regions.compactMap(Region.init), log: { _, _ in }))
        let fixture = try await ListenerFixture.start(regions: regions, storage: StoreIngestSink(store: store))
        let plan = FleetPlan(mode: .vehicles, vehicleCount: 30, regions: regions.compactMap(SimulatedRegion.named),
                             seed: 11)
        let runner = FleetRunner(plan: plan, settings: FleetSettings(port: fixture.port, reportIntervalMs: 0,
                                                                     recordsPerFrame: 5),
                                 credentials: try PKIFleetCredentials(authority: fixture.authority), threads: 1)
        let report = try await runner.run(duration: .seconds(2))
        try await fixture.stop()
        store.stop()
        #expect(report.totals.errors.isEmpty)
        #expect(report.outstandingFrames == 0)
        var storedRows = 0
        for region in regions {
            let reader = ShardReader(stateDirectory: state, region: Region(region)!)
            let health = try reader.fleetHealth()
            #expect(health.vehiclesTotal == report.vehiclesByRegion[region], "vehicles of \(region)")
            storedRows += try reader.inventory().filter { $0.kind == "telemetry" }.reduce(0) { $0 + $1.rows }
        }
        #expect(storedRows == report.totals.recordsAcked)
        // No region outside the fleet's three got a directory.
        let directories = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.count == 2 }
        #expect(Set(directories).isSubset(of: Set(regions)))
    }
}
