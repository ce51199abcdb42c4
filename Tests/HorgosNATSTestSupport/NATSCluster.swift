import Foundation
import HorgosTestSupport
import HorgosNATS
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A NATS JetStream cluster of real `nats-server` processes (Debian's 2.9.10) on free loopback ports,
/// each with its own store in a temporary directory, for the stream's tests.
///
/// Nodes can be stopped (SIGTERM or SIGKILL) and started again on the same ports and store, one by one or
/// all together. `shutdown()` (and deinit) kills every process and removes the directory: a test never
/// leaves a server running.
public final class NATSCluster: @unchecked Sendable {
    /// Why the cluster could not be used.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// One server of the cluster.
    public final class Node: @unchecked Sendable {
        public let name: String
        public let clientPort: Int
        public let clusterPort: Int
        let configPath: String
        let logPath: String
        var process: Process?

        init(name: String, clientPort: Int, clusterPort: Int, configPath: String, logPath: String) {
            self.name = name
            self.clientPort = clientPort
            self.clusterPort = clusterPort
            self.configPath = configPath
            self.logPath = logPath
        }

        public var url: String { "nats://127.0.0.1:\(clientPort)" }
        public var isRunning: Bool { process?.isRunning ?? false }
    }

    /// Where Debian installs the server; nil when it is not installed.
    public static var serverPath: String? {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Whether tests that need `nats-server` must fail (CI) rather than pass vacuously when it is missing.
    public static var required: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    public let directory: String
    public let nodes: [Node]
    private let executable: String
    private let lock = Mutex(())

    /// Writes the configurations of `size` nodes (ports chosen free now) and starts them; waits until
    /// JetStream answers on every node (a meta leader is elected). `tls` adds a `tls {}` block to each
    /// node's client listener (PEM paths; `verify` asks for client certificates).
    public init(
        size: Int = 3, tls: (certificate: String, key: String, ca: String, verify: Bool)? = nil,
        extraConfiguration: String = ""
    ) async throws {
        guard let executable = Self.serverPath else {
            throw Failure("nats-server is not installed: apt-get install nats-server (.ci/run installs it)")
        }
        self.executable = executable
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("horgos-nats-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var ports: [(Int, Int)] = []
        for _ in 0..<size { ports.append((try Self.freePort(), try Self.freePort())) }
        var made: [Node] = []
        for (index, (client, cluster)) in ports.enumerated() {
            let name = "n\(index + 1)"
            let routes = ports.enumerated().filter { $0.offset != index }.map {
                "nats-route://127.0.0.1:\($0.element.1)"
            }
            var text = """
                server_name: \(name)
                listen: 127.0.0.1:\(client)
                max_payload: 8MB
                jetstream {
                  store_dir: "\(directory)/\(name)"
                  max_memory_store: 64MB
                  max_file_store: 4GB
                }

                """
            if size > 1 {
                text += """
                    cluster {
                      name: horgos-test
                      listen: 127.0.0.1:\(cluster)
                      routes: [\(routes.joined(separator: ", "))]
                    }

                    """
            }
            if let tls {
                text += """
                    tls {
                      cert_file: "\(tls.certificate)"
                      key_file: "\(tls.key)"
                      ca_file: "\(tls.ca)"
                      verify: \(tls.verify)
                      timeout: 5
                    }

                    """
            }
            text += extraConfiguration
            let config = "\(directory)/\(name).conf"
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            made.append(
                Node(
                    name: name, clientPort: client, clusterPort: cluster, configPath: config,
                    logPath: "\(directory)/\(name).log"))
        }
        nodes = made
        for node in nodes { try start(node) }
        try await waitUntilReady(timeout: .seconds(60), tls: tls != nil)
    }

    deinit { shutdown() }

    /// Comma-separated client URLs of every node (`stream.servers`).
    public var urls: String { nodes.map(\.url).joined(separator: ",") }

    /// Starts a stopped node (same ports, same store).
    public func start(_ node: Node) throws {
        try lock.withLock { _ in
            guard !node.isRunning else { return }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["-c", node.configPath, "-l", node.logPath]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            node.process = process
        }
    }

    /// Stops a node with `signal` (SIGTERM: clean; SIGKILL: a crash) and waits for it to exit.
    public func stop(_ node: Node, signal: Int32 = SIGKILL) async {
        let process: Process? = lock.withLock { _ in
            let process = node.process
            node.process = nil
            return process
        }
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        for _ in 0..<500 where process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Kills every node and removes the directory (idempotent).
    public func shutdown() {
        lock.withLock { _ in
            for node in nodes {
                if let process = node.process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
                node.process = nil
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The last lines of a node's log (for failure messages).
    public func log(_ node: Node, lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: node.logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Waits until every running node answers `$JS.API.INFO` (JetStream enabled and a meta leader).
    public func waitUntilReady(timeout: Duration, tls: Bool = false) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        if tls {
            // A TLS server wants this client's certificate: wait for its port only (a single node).
            for node in nodes where node.isRunning {
                while !Self.accepts(port: node.clientPort) {
                    if clock.now > deadline { throw Failure("\(node.name) does not listen\n\(log(node))") }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            return
        }
        for node in nodes where node.isRunning {
            var last = "no answer"
            while true {
                if clock.now > deadline {
                    throw Failure("JetStream on \(node.name) not ready: \(last)\n\(log(node))")
                }
                if let answer = try? await NATSTestClient.request(
                    url: node.url, subject: "$JS.API.INFO", tls: tls, timeout: .seconds(2))
                {
                    let text = String(decoding: answer, as: UTF8.self)
                    if !text.contains("\"error\"") { break }
                    last = text
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// A TCP port that was free a moment ago.
    public static func freePort() throws -> Int { try LoopbackPort.free() }

    static func accepts(port: Int) -> Bool { LoopbackPort.accepts(port) }
}

/// A short-lived HorgosNATS connection for test plumbing: one request, or reading a whole stream.
public enum NATSTestClient {
    static let group = MultiThreadedEventLoopGroup.singleton

    /// Connects to `url`, runs `body` with the connection, closes it.
    public static func withConnection<T: Sendable>(
        url: String, tls: Bool = false, _ body: @Sendable (NATSConnection) async throws -> T
    ) async throws -> T {
        guard var address = NATSServerAddress(parsing: url) else { throw NATSCluster.Failure("bad URL \(url)") }
        if tls { address.tls = true }
        var options = NATSConnection.Options(servers: [address], name: "horgos-test")
        options.reconnectDelayMax = .milliseconds(200)
        let connection = try NATSConnection(
            options: options, eventLoop: group.next(), logger: Logger(label: "nats-test"))
        connection.start()
        defer { _ = connection.close() }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while !(try await connection.eventLoop.submit { connection.isConnected }.get()) {
            if clock.now > deadline { throw NATSCluster.Failure("cannot connect to \(url)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await body(connection)
    }

    /// One request's reply payload.
    public static func request(
        url: String, subject: String, body: [UInt8] = [], tls: Bool = false,
        timeout: TimeAmount
    ) async throws -> [UInt8] {
        try await withConnection(url: url, tls: tls) { connection in
            let reply = try await connection.request(subject, payload: body, timeout: timeout).get()
            return Array(reply.payload.readableBytesView)
        }
    }

    /// Every message of `stream` (optionally of subjects matching `filter`), in stream order, read with
    /// an ephemeral pull consumer (acknowledgements off).
    public static func readAll(url: String, stream: String, filter: String? = nil) async throws -> [NATSMessage] {
        try await withConnection(url: url) { connection in
            let jetStream = JetStreamContext(connection: connection, timeout: .seconds(10))
            var config: [String: Any] = [
                "ack_policy": "none", "deliver_policy": "all", "inactive_threshold": 60_000_000_000,
            ]
            if let filter { config["filter_subject"] = filter }
            let body = try JSONSerialization.data(withJSONObject: ["stream_name": stream, "config": config])
            // Right after a node of the cluster came back the stream may have no leader for a while (an
            // election, a catch-up): the creation times out or answers 503. Wait for it, up to 60 s.
            let clock = ContinuousClock()
            let creationDeadline = clock.now + .seconds(60)
            var createdName = ""
            while true {
                do {
                    let created = try await jetStream.call("CONSUMER.CREATE.\(stream)", body: Array(body))
                    let json = try JSONSerialization.jsonObject(with: Data(created)) as? [String: Any]
                    guard let created = json?["name"] as? String else {
                        throw NATSCluster.Failure("no consumer name in \(String(decoding: created, as: UTF8.self))")
                    }
                    createdName = created
                    break
                } catch {
                    if clock.now >= creationDeadline { throw error }
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            let name = createdName
            let collected = Collected()
            let inbox = connection.inboxPrefix + ".read"
            _ = try await connection.eventLoop.submit {
                connection.subscribe(inbox) { message in collected.add(message) }
            }.get()
            while true {
                let before = collected.count
                let pull = Array("{\"batch\":1000,\"no_wait\":true}".utf8)
                _ = try await connection.eventLoop.submit {
                    pull.withUnsafeBytes { bytes in
                        connection.publish(
                            subject: JetStreamContext.nextSubject(stream: stream, durable: name), replyTo: inbox,
                            payload: bytes)
                    }
                }.get()
                // Wait for the batch to end (a status message: 404 no more, 408 timeout).
                let deadline = clock.now + .seconds(10)
                while !collected.endedSince(before), clock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                _ = collected.takeStatus()
                // A short batch means the stream had no more: done.
                if collected.count - before < 1000 { break }
            }
            _ = try? await jetStream.call("CONSUMER.DELETE.\(stream).\(name)", body: [])
            return collected.messages
        }
    }

    /// Messages received on the read inbox (the connection's loop appends, the test reads).
    final class Collected: Sendable {
        private let state = Mutex<(messages: [NATSMessage], statuses: [Int])>(([], []))

        func add(_ message: NATSMessage) {
            state.withLock { state in
                if let status = message.status, message.payload.readableBytes == 0 {
                    state.statuses.append(status)
                } else {
                    state.messages.append(message)
                }
            }
        }

        var count: Int { state.withLock { $0.messages.count } }
        var messages: [NATSMessage] { state.withLock { $0.messages } }

        /// A batch ended: a status came, or 1000 messages arrived since `before`.
        func endedSince(_ before: Int) -> Bool {
            state.withLock { !$0.statuses.isEmpty || $0.messages.count - before >= 1000 }
        }

        func takeStatus() -> [Int] {
            state.withLock { state in
                defer { state.statuses.removeAll() }
                return state.statuses
            }
        }
    }
}

