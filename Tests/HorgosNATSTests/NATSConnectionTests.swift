import Foundation
import HorgosNATS
import HorgosNATSTestSupport
import HorgosPKI
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// The client against real `nats-server` processes (Debian's 2.9.10): publish/subscribe/request,
/// reconnect with re-subscription, cluster discovery from INFO, TLS with client certificates, a
/// server that stops answering PINGs, and JetStream's API and de-duplication window.
@Suite(.serialized) struct NATSConnectionTests {
    /// A cluster, or nil after recording that `nats-server` is missing (a failure, not a skip).
    static func cluster(size: Int = 1, tls: (certificate: String, key: String, ca: String, verify: Bool)? = nil)
        async throws -> NATSCluster?
    {
        guard NATSCluster.serverPath != nil else {
            Issue.record("nats-server is not installed: apt-get install nats-server (.ci/run installs it)")
            return nil
        }
        return try await NATSCluster(size: size, tls: tls)
    }

    static func connect(_ urls: [String], configure: (inout NATSConnection.Options) -> Void = { _ in }) throws
        -> NATSConnection
    {
        var options = NATSConnection.Options(servers: urls.compactMap(NATSServerAddress.init(parsing:)))
        options.reconnectDelayMax = .milliseconds(200)
        configure(&options)
        let connection = try NATSConnection(
            options: options, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test"))
        connection.start()
        return connection
    }

    /// Waits (bounded) until `condition` holds on the connection's loop.
    static func wait(
        _ connection: NATSConnection, timeout: Duration = .seconds(20), _ what: String,
        _ condition: @escaping @Sendable (NATSConnection) -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !(try await connection.eventLoop.submit { condition(connection) }.get()) {
            guard clock.now < deadline else { throw NATSCluster.Failure("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    final class Inbox: Sendable {
        let messages = Mutex<[String]>([])
        func add(_ message: NATSMessage) { messages.withLock { $0.append(String(buffer: message.payload)) } }
        var all: [String] { messages.withLock { $0 } }
    }

    @Test func publishesReachSubscribersAndRequestsGetTheirReply() async throws {
        guard let cluster = try await Self.cluster() else { return }
        defer { cluster.shutdown() }
        let connection = try Self.connect([cluster.nodes[0].url])
        defer { _ = connection.close() }
        try await Self.wait(connection, "connected") { $0.isConnected }
        let inbox = Inbox()
        try await connection.eventLoop.submit {
            connection.subscribe("greet.*") { inbox.add($0) }
            connection.subscribe("service.echo") { request in
                guard let reply = request.replyTo else { return }
                let answer = Array(("echo " + String(buffer: request.payload)).utf8)
                answer.withUnsafeBytes { _ = connection.publish(subject: reply, payload: $0) }
            }
        }.get()
        try await connection.roundTrip().get()
        try await connection.eventLoop.submit {
            for name in ["a", "b", "c"] {
                Array(name.utf8).withUnsafeBytes { _ = connection.publish(subject: "greet.\(name)", payload: $0) }
            }
        }.get()
        let reply = try await connection.request("service.echo", payload: Array("ping".utf8), timeout: .seconds(5))
            .get()
        #expect(String(buffer: reply.payload) == "echo ping")
        try await connection.roundTrip().get()
        #expect(inbox.all == ["a", "b", "c"], "in order, each once")
        // No subscriber: the server answers at once with a 503 status (no_responders); a subscriber that
        // never answers: the request times out.
        let none = try await connection.request("nobody.listens", payload: [], timeout: .seconds(5)).get()
        #expect(none.status == 503)
        _ = try await connection.eventLoop.submit { connection.subscribe("service.silent") { _ in } }.get()
        try await connection.roundTrip().get()
        await #expect(throws: NATSConnectionError.timeout) {
            _ = try await connection.request("service.silent", payload: [], timeout: .milliseconds(300)).get()
        }
    }

    @Test func aRestartedServerIsReconnectedAndSubscriptionsComeBack() async throws {
        guard let cluster = try await Self.cluster() else { return }
        defer { cluster.shutdown() }
        let connection = try Self.connect([cluster.nodes[0].url])
        defer { _ = connection.close() }
        try await Self.wait(connection, "connected") { $0.isConnected }
        let inbox = Inbox()
        _ = try await connection.eventLoop.submit { connection.subscribe("after.restart") { inbox.add($0) } }.get()
        await cluster.stop(cluster.nodes[0])
        try await Self.wait(connection, "disconnected") { !$0.isConnected }
        #expect(connection.snapshot.state != .connected)
        try cluster.start(cluster.nodes[0])
        try await Self.wait(connection, timeout: .seconds(30), "reconnected") { $0.isConnected }
        try await connection.eventLoop.submit {
            Array("back".utf8).withUnsafeBytes { _ = connection.publish(subject: "after.restart", payload: $0) }
        }.get()
        try await connection.roundTrip().get()
        #expect(inbox.all == ["back"], "the subscription was sent again on the new connection")
        #expect(connection.snapshot.connects == 2 && connection.snapshot.disconnects == 1)
    }

    @Test func theClusterIsDiscoveredFromINFOAndAnotherNodeTakesOver() async throws {
        guard let cluster = try await Self.cluster(size: 3) else { return }
        defer { cluster.shutdown() }
        // Only the first node is configured; the others come from INFO's connect_urls.
        let connection = try Self.connect([cluster.nodes[0].url])
        defer { _ = connection.close() }
        try await Self.wait(connection, "connected") { $0.isConnected }
        try await Self.wait(connection, "connect_urls") { ($0.serverInfo?.connectURLs.count ?? 0) >= 3 }
        let first = connection.snapshot.server
        #expect(first == "nats://127.0.0.1:\(cluster.nodes[0].clientPort)")
        await cluster.stop(cluster.nodes[0])
        try await Self.wait(connection, timeout: .seconds(30), "connected elsewhere") {
            $0.isConnected && $0.snapshot.server != first
        }
        let now = connection.snapshot.server ?? ""
        #expect(cluster.nodes.dropFirst().contains { now.hasSuffix(":\($0.clientPort)") }, "\(now)")
    }

    @Test func tlsWithAClientCertificateConnectsAndWithoutOneIsRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-nats-tls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try FleetPKI.createCertificateAuthority()
        try authority.write(certificatePath: directory + "/ca.pem", privateKeyPath: directory + "/ca-key.pem")
        try authority.issueServerCertificate().write(
            certificatePath: directory + "/server.pem", privateKeyPath: directory + "/server-key.pem")
        try authority.issueGatewayCertificate(name: "horgosd-node-a", market: "AE").write(
            certificatePath: directory + "/client.pem", privateKeyPath: directory + "/client-key.pem")
        guard
            let cluster = try await Self.cluster(
                tls: (directory + "/server.pem", directory + "/server-key.pem", directory + "/ca.pem", true))
        else { return }
        defer { cluster.shutdown() }
        let url = "tls://localhost:\(cluster.nodes[0].clientPort)"
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(directory + "/ca.pem")
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(directory + "/client.pem").map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: directory + "/client-key.pem", format: .pem))
        let connection = try Self.connect([url]) { $0.tls = tls }
        defer { _ = connection.close() }
        try await Self.wait(connection, "connected over TLS") { $0.isConnected }
        try await connection.roundTrip().get()

        var noClientCertificate = TLSConfiguration.makeClientConfiguration()
        noClientCertificate.trustRoots = .file(directory + "/ca.pem")
        let refused = try Self.connect([url]) { $0.tls = noClientCertificate }
        defer { _ = refused.close() }
        try await Task.sleep(for: .seconds(2))
        #expect(!(try await refused.eventLoop.submit { refused.isConnected }.get()))
        #expect(refused.snapshot.lastError != nil)
    }

    @Test func aServerThatStopsAnsweringPingsIsLeftAndConnectedAgain() async throws {
        let server = try await SilentServer.start()
        defer { server.close() }
        let connection = try Self.connect(["nats://127.0.0.1:\(server.port)"]) {
            $0.pingInterval = .milliseconds(100)
            $0.maxPingsOutstanding = 2
        }
        defer { _ = connection.close() }
        try await Self.wait(connection, "connected") { $0.isConnected }
        // The server answered the handshake's PING, then nothing: after two unanswered PINGs the client
        // closes and connects again (a second accepted connection).
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while server.accepted < 2 && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.accepted >= 2)
        let reason = connection.snapshot.lastDisconnectReason ?? "-"
        #expect(reason.contains("PONG") && connection.snapshot.disconnects >= 1, "\(reason)")
    }

    @Test func jetStreamStreamsAreCreatedOnceAndRepublishedMessageIDsAreDropped() async throws {
        guard let cluster = try await Self.cluster(size: 3) else { return }
        defer { cluster.shutdown() }
        let connection = try Self.connect(cluster.nodes.map(\.url))
        defer { _ = connection.close() }
        try await Self.wait(connection, "connected") { $0.isConnected }
        let jetStream = JetStreamContext(connection: connection, timeout: .seconds(10))
        let configuration = JetStreamStreamConfiguration(
            name: "T", subjects: ["t.>"], numReplicas: 3, maxAge: 0, maxBytes: -1, duplicateWindow: 120_000_000_000)
        #expect(try await jetStream.streamInfo("T") == nil)
        let (created, wasCreated) = try await jetStream.ensureStream(configuration)
        #expect(wasCreated && created.config.numReplicas == 3)
        let (_, again) = try await jetStream.ensureStream(configuration)
        #expect(!again, "found, not created twice")

        func publish(_ id: String) async throws -> JetStreamPublishAck {
            let reply = try await connection.request(
                "t.x", payload: Array("body".utf8), headers: NATSHeaders(fields: [("Nats-Msg-Id", id)]),
                timeout: .seconds(10)
            ).get()
            return JetStreamPublishAck.parse(reply)
        }
        #expect(try await publish("n1:1") == .stored(sequence: 1, duplicate: false))
        #expect(try await publish("n1:2") == .stored(sequence: 2, duplicate: false))
        #expect(try await publish("n1:1") == .stored(sequence: 1, duplicate: true), "within the window: dropped")
        #expect(try await jetStream.streamInfo("T")?.state.messages == 2)

        try await jetStream.createDurableConsumer(
            stream: "T",
            JetStreamConsumerConfiguration(
                durableName: "c1", filterSubject: "t.>", ackWait: 30_000_000_000, maxAckPending: 100))
        let messages = try await NATSTestClient.readAll(url: cluster.nodes[1].url, stream: "T")
        #expect(messages.count == 2)
        #expect(messages.compactMap { $0.headers?["Nats-Msg-Id"] } == ["n1:1", "n1:2"])
    }
}

/// A fake NATS server that sends INFO, answers the handshake's PING once and then never again.
final class SilentServer: Sendable {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    let channel: any Channel
    let port: Int
    let counter: Counter
    /// Connections accepted so far.
    var accepted: Int { counter.value.load(ordering: .relaxed) }

    private init(channel: any Channel, counter: Counter) {
        self.channel = channel
        self.counter = counter
        port = channel.localAddress?.port ?? 0
    }

    static func start() async throws -> SilentServer {
        let counter = Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                counter.value.add(1, ordering: .relaxed)
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(Handler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentServer(channel: channel, counter: counter)
    }

    func close() { channel.close(promise: nil) }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var answered = false

        func channelActive(context: ChannelHandlerContext) {
            let info =
                "INFO {\"server_id\":\"silent\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576}\r\n"
            context.writeAndFlush(NIOAny(ByteBuffer(string: info)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            if !answered && text.contains("PING") {
                answered = true
                context.writeAndFlush(NIOAny(ByteBuffer(string: "PONG\r\n")), promise: nil)
            }
        }
    }
}
