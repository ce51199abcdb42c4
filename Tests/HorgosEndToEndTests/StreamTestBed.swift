import Foundation
import HorgosNATS
import HorgosNATSTestSupport
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosStreamFormat
import HorgosWire
import NIOCore
import SwiftProtobuf
import Testing

/// Shared plumbing of the stream's end-to-end tests (issue 20): a real 3-node JetStream cluster, real
/// `horgosd` processes publishing to it, the simulator's ACK ledger, and the stream read back and
/// decoded with the generated types of Proto/stream/horgos_stream_v1.proto.
enum StreamTestBed {
    /// A cluster, or nil after recording that `nats-server` is missing (a failure in CI and locally).
    static func cluster(size: Int = 3) async throws -> NATSCluster? {
        guard NATSCluster.serverPath != nil else {
            Issue.record("nats-server is not installed: apt-get install nats-server (.ci/run installs it)")
            return nil
        }
        return try await NATSCluster(size: size)
    }

    /// Runs `body` with a cluster of `clusterSize` nodes and a started daemon publishing to it (regions AE
    /// and SA); both are gone when it returns or throws.
    static func withDaemon(
        clusterSize: Int = 3, node: String, durability: String = "disk", extra: [String: String] = [:],
        _ body: (NATSCluster, DaemonProcess) async throws -> Void
    ) async throws {
        guard let cluster = try await cluster(size: clusterSize) else { return }
        defer { cluster.shutdown() }
        let daemon = try DaemonProcess(
            environment: environment(servers: cluster.urls, node: node, durability: durability, extra: extra))
        defer { daemon.removeState() }
        try await daemon.start()
        try await body(cluster, daemon)
    }

    /// A daemon's stream settings (plus anything in `extra`): the cluster, its node id, the durability.
    static func environment(
        servers: String, node: String, durability: String = "disk", regions: String = "AE,SA",
        extra: [String: String] = [:]
    ) -> [String: String] {
        [
            "HORGOS_REGIONS": regions,
            "HORGOS_STREAM_SERVERS": servers,
            "HORGOS_NODE_ID": node,
            "HORGOS_STORE_DURABILITY": durability,
            // A publish without an ack after 2 s is sent again: the outage tests need no 5 s pauses.
            "HORGOS_STREAM_ACK_TIMEOUT_MS": "2000",
            "HORGOS_STORE_APPLY_INTERVAL_MS": "200",
        ].merging(extra) { $1 }
    }

    /// The parts of `/status` these tests read.
    struct Status: Decodable {
        struct Stream: Decodable {
            var state: String
            var publishedLsn: UInt64
            var published: Int
            var outstanding: Int
            var heldAcks: Int
            var resends: Int
        }
        struct Region: Decodable {
            var region: String
            var state: String
            var recordsStored: Int
            var recordsDuplicate: Int
            var publishLagEntries: Int?
            var publishLagBytes: Int?
            var publishHeld: Bool?
            var followState: String?
            var followLagEntries: Int?
        }
        var stream: Stream?
        var regions: [Region]
    }

    static func status(_ daemon: DaemonProcess) async throws -> Status {
        let body = try await daemon.httpGet("/status").body
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Status.self, from: Data(body.utf8))
    }

    /// Waits (bounded) until `condition` holds for the daemon's `/status`; returns the last one.
    @discardableResult
    static func waitForStatus(
        _ daemon: DaemonProcess, timeout: Duration = .seconds(60), _ what: String,
        _ condition: (Status) -> Bool
    ) async throws -> Status {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last: Status?
        while clock.now < deadline {
            if let status = try? await status(daemon) {
                last = status
                if condition(status) { return status }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError(
            "timed out waiting for \(what); last /status stream: \(String(describing: last?.stream)) "
                + "regions: \(String(describing: last?.regions))\n" + daemon.log.suffix(3000))
    }

    /// Waits until everything the daemon journaled is on the stream (no lag, nothing in flight).
    static func waitUntilPublished(_ daemon: DaemonProcess, timeout: Duration = .seconds(90)) async throws {
        try await waitForStatus(daemon, timeout: timeout, "the stream to have every entry") { status in
            guard let stream = status.stream, stream.state == "connected", stream.outstanding == 0 else { return false }
            return status.regions.allSatisfy { ($0.publishLagEntries ?? 0) == 0 }
        }
    }

    /// One message of the stream, decoded.
    struct Entry {
        var messageID: String
        var subject: String
        var record: Horgos_Stream_V1_Record
        /// Device times of the record's samples (telemetry, or the GB/T report's one).
        var timestamps: [Int64] {
            switch record.body {
            case .telemetry(let telemetry)?: telemetry.samples.map(\.timestampMs)
            case .gbt32960(let report)?: [report.sample.timestampMs]
            default: []
            }
        }
    }

    /// Every message of the stream, in stream order, read from the first running node.
    static func entries(_ cluster: NATSCluster, stream: String = "HORGOS") async throws -> [Entry] {
        guard let node = cluster.nodes.first(where: \.isRunning) else { throw HarnessError("no NATS node runs") }
        let messages = try await NATSTestClient.readAll(url: node.url, stream: stream)
        return try messages.map { message in
            Entry(
                messageID: message.headers?["Nats-Msg-Id"] ?? "",
                subject: message.subject,
                record: try Horgos_Stream_V1_Record(serializedBytes: Array(message.payload.readableBytesView)))
        }
    }

    /// The checks every exactly-once test makes: no message id twice (JetStream's duplicate window
    /// dropped every republish), and the stream's records are the ACK ledger, VIN by VIN. `exactCount`:
    /// also no record twice (no unit had to resend, so no second receipt of a frame).
    static func expectStreamMatchesLedger(
        _ entries: [Entry], _ ledger: AckLedger, exactCount: Bool, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let ids = entries.map(\.messageID)
        #expect(Set(ids).count == ids.count, "a Nats-Msg-Id delivered twice", sourceLocation: sourceLocation)
        #expect(!ids.contains(""), "every message has a Nats-Msg-Id", sourceLocation: sourceLocation)
        var onStream: [String: [Int64]] = [:]
        for entry in entries where entry.record.kind == .telemetry {
            onStream[entry.record.vehicleIdentificationVin, default: []].append(contentsOf: entry.timestamps)
        }
        let acked = ledger.entries
        var missing = 0
        var extra = 0
        for (vin, times) in acked {
            let streamed = Set(onStream[vin] ?? [])
            missing += times.subtracting(streamed).count
            extra += streamed.subtracting(times).count
        }
        extra += onStream.filter { acked[$0.key] == nil }.values.reduce(0) { $0 + $1.count }
        #expect(missing == 0, "\(missing) acknowledged records are not on the stream", sourceLocation: sourceLocation)
        #expect(extra == 0, "\(extra) records on the stream were never acknowledged", sourceLocation: sourceLocation)
        let samples = onStream.values.reduce(0) { $0 + $1.count }
        if exactCount {
            #expect(
                samples == ledger.count, "stream samples \(samples) = acknowledged records \(ledger.count)",
                sourceLocation: sourceLocation)
        }
        print("stream check: \(entries.count) messages, \(samples) samples, \(ledger.count) acknowledged records")
    }

    /// A fleet driving `port` with the daemon's PKI, filling `ledger`; reconnects quickly after a kill.
    static func fleet(
        _ daemon: DaemonProcess, port: Int? = nil, vehicles: Int, region: String = "AE", intervalMs: Int,
        recordsPerFrame: Int = 1, gateways: Int = 0, ledger: AckLedger, sniDomain: String? = nil,
        authority: FleetPKICredentialsSource? = nil, seed: UInt64 = 20
    ) throws -> FleetRunner {
        var settings = FleetSettings(
            port: port ?? daemon.telemetryPort, reportIntervalMs: intervalMs, recordsPerFrame: recordsPerFrame,
            initialBackoffMs: 100, maxBackoffMs: 1000)
        settings.ackLedger = ledger
        settings.sniDomain = sniDomain
        let credentials = try PKIFleetCredentials(authority: try authority?.authority() ?? daemon.authority())
        return FleetRunner(
            plan: FleetPlan(
                mode: gateways > 0 ? .gateways(gateways) : .vehicles, vehicleCount: vehicles,
                regions: [SimulatedRegion.named(region)!], seed: seed),
            settings: settings, credentials: credentials, threads: 1)
    }
}

/// Where a fleet gets its CA from when it is not the daemon's development PKI.
struct FleetPKICredentialsSource {
    let directory: String
    func authority() throws -> HorgosPKI.FleetPKI {
        try HorgosPKI.FleetPKI(caCertificatePath: directory + "/ca.pem", caPrivateKeyPath: directory + "/ca-key.pem")
    }
}
