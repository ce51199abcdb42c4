import Foundation
import HorgosNATS
import HorgosNATSTestSupport
import HorgosStore
import HorgosStream
import HorgosWire
import Logging
import NIOCore
import Synchronization
import Testing

/// The publisher and the follower in process, with real stores and a real JetStream server: entries
/// go on the stream once in LSN order, a restart republishes nothing it had published, a follower
/// applies another node's entries (and not its own), and its own publisher does not publish them again.
@Suite(.serialized) struct PublisherFollowerTests {
    static let ae = Region("AE")!
    static let sa = Region("SA")!

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "horgos-stream-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func node(
        _ id: String, state: String, cluster: NATSCluster, regions: [Region] = [ae], follow: [Region] = [],
        replicated: Bool = false, streams: @escaping @Sendable (Region) -> Bool = { _ in true }
    ) throws -> StreamNode {
        try StreamNode(
            settings: StreamNodeSettings(
                servers: cluster.nodes.compactMap { NATSServerAddress(parsing: $0.url) }, tls: nil, node: id,
                subjectPrefix: "horgos",
                definition: StreamDefinition(
                    name: "HORGOS", subjects: ["horgos.>"], replicas: 1, maxAgeSeconds: 0, maxBytes: -1,
                    duplicateWindowSeconds: 120),
                maxLagBytes: 64 << 20, maxOutstanding: 64, ackTimeout: .seconds(2), replicated: replicated,
                stateDirectory: state, regions: regions, followRegions: follow, catchUpTimeout: nil,
                horizon: TimeHorizon(), streams: streams),
            logger: Logger(label: "test-\(id)"))
    }

    static func store(_ state: String, node: StreamNode, regions: [Region] = [ae]) throws -> ShardStore {
        var configuration = StoreConfiguration(
            stateDirectory: state, regions: regions, applyIntervalMs: 20, journalSegmentBytes: 1 << 20, appliers: 1,
            durabilityIntervalMs: 200, log: { _, _ in })
        configuration.journalHooks = node.journalHooks
        return try ShardStore(configuration: configuration)
    }

    static func payload(_ index: Int, vin: VIN) -> [UInt8] {
        var frame: [UInt8] = []
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let records = (0..<5).map {
            TelemetryRecord(timeOffsetMs: UInt32($0) * 1000, latitudeE7: 250_000_000, longitudeE7: 550_000_000, soc: 60)
        }
        FrameEncoder.appendTelemetry(
            vin: vin, baseTimeMs: now - 3_600_000 + Int64(index) * 10_000, records: records, sequence: 1, to: &frame)
        return Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
    }

    static func until(_ seconds: Double = 30, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    final class Counter: Sendable {
        let value = Mutex(0)
        var callback: @Sendable (CommitOutcome) -> Void { { [self] _ in value.withLock { $0 += 1 } } }
        var count: Int { value.withLock { $0 } }
    }

    @Test func entriesGoOnTheStreamOnceAndAFollowerAppliesAnotherNodesEntriesOnly() async throws {
        guard NATSCluster.serverPath != nil else {
            Issue.record("nats-server is not installed: apt-get install nats-server (.ci/run installs it)")
            return
        }
        let cluster = try await NATSCluster(size: 1)
        defer { cluster.shutdown() }
        let stateA = Self.temporaryDirectory()
        let stateB = Self.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: stateA)
            try? FileManager.default.removeItem(atPath: stateB)
        }
        let vin = VIN("LSVAU2180N2183294")!

        // Node A publishes 100 entries.
        let nodeA = try Self.node("a", state: stateA, cluster: cluster)
        let storeA = try Self.store(stateA, node: nodeA)
        nodeA.start(store: storeA)
        let done = Counter()
        for index in 0..<100 {
            try storeA.writer(for: Self.ae).submitTelemetry(Self.payload(index, vin: vin), completion: done.callback)
        }
        #expect(try await Self.until { done.count == 100 })
        #expect(try await Self.until { nodeA.publisher.snapshot.publishedLSN == 100 })
        var messages = try await NATSTestClient.readAll(url: cluster.nodes[0].url, stream: "HORGOS")
        #expect(messages.count == 100)
        #expect(messages.compactMap { $0.headers?["Horgos-LSN"] } == (1...100).map(String.init), "in LSN order")
        #expect(messages.allSatisfy { $0.subject == "horgos.AE.telemetry" && $0.headers?["Horgos-Node"] == "a" })
        #expect(nodeA.publisher.snapshot.regions[Self.ae]?.entries == 0)
        await nodeA.stop()
        storeA.stop()
        #expect(PublishedLSNFile.read(stateDirectory: stateA).lsn == 100, "persisted at stop")

        // A restart of A publishes nothing again (its published LSN was persisted).
        let nodeA2 = try Self.node("a", state: stateA, cluster: cluster)
        let storeA2 = try Self.store(stateA, node: nodeA2)
        nodeA2.start(store: storeA2)
        try await Task.sleep(for: .seconds(1))
        #expect(nodeA2.publisher.snapshot.published == 0 && nodeA2.publisher.snapshot.publishedLSN >= 100)

        // B follows AE: A's 500 records land in B's shards; B's publisher skips them.
        let nodeB = try Self.node("b", state: stateB, cluster: cluster, follow: [Self.ae])
        let storeB = try Self.store(stateB, node: nodeB)
        nodeB.start(store: storeB)
        #expect(try await Self.until { nodeB.isCaughtUp(Self.ae) })
        #expect(try await Self.until { try! storeB.writer(for: Self.ae).statistics.recordsStored == 500 })
        #expect(nodeB.follower?.status[Self.ae]?.applied == 100)

        // A's own entries come back to A's follower too and are skipped; B's ingest reaches A.
        let doneB = Counter()
        try storeB.writer(for: Self.ae).submitTelemetry(Self.payload(100, vin: vin), completion: doneB.callback)
        #expect(try await Self.until { doneB.count == 1 })
        #expect(try await Self.until { nodeB.publisher.snapshot.published == 1 }, "B publishes its own entry only")
        messages = try await NATSTestClient.readAll(url: cluster.nodes[0].url, stream: "HORGOS")
        #expect(messages.count == 101)
        #expect(messages.last?.headers?["Nats-Msg-Id"] == "b:101")

        await nodeB.stop()
        storeB.stop()
        await nodeA2.stop()
        storeA2.stop()
    }

    /// Issue 22's `policy.<CC>.stream: false` reaches the publisher as its predicate: the region's entries
    /// never go on the stream, and in `replicated` mode its ACKs do not wait for a stream they never reach
    /// (while the other region's still do, and are all published).
    @Test func aRegionWhosePolicyForbidsTheStreamIsNeverPublishedAndItsAcksDoNotWait() async throws {
        guard NATSCluster.serverPath != nil else {
            Issue.record("nats-server is not installed: apt-get install nats-server (.ci/run installs it)")
            return
        }
        let cluster = try await NATSCluster(size: 1)
        defer { cluster.shutdown() }
        let state = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let vin = VIN("LSVAU2180N2183294")!
        let node = try Self.node(
            "p", state: state, cluster: cluster, regions: [Self.ae, Self.sa], replicated: true,
            streams: { $0 != Self.sa })
        let store = try Self.store(state, node: node, regions: [Self.ae, Self.sa])
        node.start(store: store)
        let doneAE = Counter()
        let doneSA = Counter()
        for index in 0..<10 {
            try store.writer(for: Self.sa).submitTelemetry(Self.payload(index, vin: vin), completion: doneSA.callback)
            try store.writer(for: Self.ae).submitTelemetry(Self.payload(index, vin: vin), completion: doneAE.callback)
        }
        #expect(try await Self.until { doneSA.count == 10 && doneAE.count == 10 })
        #expect(try await Self.until { node.publisher.snapshot.publishedLSN == 20 }, "skipped entries count as done")
        let messages = try await NATSTestClient.readAll(url: cluster.nodes[0].url, stream: "HORGOS")
        #expect(messages.count == 10, "AE's entries only")
        #expect(messages.allSatisfy { $0.subject == "horgos.AE.telemetry" })
        #expect(node.publisher.snapshot.regions[Self.sa]?.entries ?? 0 == 0, "no publish lag for SA")
        await node.stop()
        store.stop()
    }
}
