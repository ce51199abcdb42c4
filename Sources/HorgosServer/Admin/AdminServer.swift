import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The plain-HTTP admin endpoint: `GET /health`, `GET /health/CC` (one region, for a load balancer's
/// per-region check), `GET /status` (JSON), `GET /fleet` (fleet health of this node's shards, JSON,
/// merged by `horgosctl --node ...`), `GET /metrics` (Prometheus text), `GET /reload` (the latest
/// reload's verdict, JSON) and `POST /quarantine/CC/acknowledge` (an operator saw the region's
/// quarantined files: `/health/CC` stops reporting them).
///
/// `POST` requests (bodies up to 64 KiB) go to `Sources.post` with the peer's identity (``AdminPeer``:
/// on a Unix socket the kernel's `SO_PEERCRED` uid and pid, over TCP the address): the daemon's actions
/// (erase a vehicle, reload), which it records in the audit log with that peer.
///
/// A `Service`: binds on `run()`, reports the bound address through `onBound`, serves until graceful
/// shutdown or cancellation. No authentication and no TLS: bind it to loopback or a management network
/// (the shipped configuration uses a Unix socket only root and group horgos reach). Limits: GET and HEAD
/// with no body, POST with at most 64 KiB (the acknowledgement: no body); one response per request,
/// keep-alive; a connection waiting for a POST's answer is not closed as idle.
public final class AdminServer: Service, CustomStringConvertible, Sendable {
    /// What the endpoint reports; each closure is called on an event loop, so keep them cheap.
    public struct Sources: Sendable {
        /// True while the daemon is serving (200 on `/health`), false while starting or stopping (503).
        public var isServing: @Sendable () -> Bool
        /// The `/status` document, encoded as JSON.
        public var status: @Sendable () -> any Encodable & Sendable
        /// The registry `/metrics` renders (the one swift-metrics was bootstrapped with).
        public var registry: PrometheusCollectorRegistry
        /// Called at each scrape before the registry is rendered; returns more Prometheus text to append
        /// (the daemon publishes the region writers' figures into the registry here).
        public var extraMetrics: @Sendable () -> String
        /// One served region's writer status for `/health/CC`; nil: this node does not serve it (404).
        public var regionStatus: @Sendable (String) -> RegionStatus?
        /// The `/fleet` document (fleet health of every region with data); reads the shards, so it runs
        /// on a thread pool, never on an event loop. Arguments: low-SOC and over-temperature thresholds.
        public var fleetHealth: @Sendable (_ lowSOC: Int, _ maxCellTemp: Int) throws -> any Encodable & Sendable
        /// The latest reload's verdict, served as JSON on `/reload` (nil: 404).
        public var reloadVerdict: @Sendable () -> (any Encodable & Sendable)?
        /// What `/health` adds to its 200 "ok" while the node serves degraded (the journal's disk is full:
        /// `disk_full ...`); nil while nothing is wrong.
        public var healthDetail: @Sendable () -> String? = { nil }
        /// `POST /quarantine/CC/acknowledge`: records the acknowledgement and returns the JSON answer;
        /// nil when this node does not serve the region (404).
        public var acknowledgeQuarantine: @Sendable (String) throws -> (any Encodable & Sendable)? = { _ in nil }
        /// Answers every other `POST` request (nil: 405). Runs off the event loop; may take as long as the
        /// action does.
        public var post: (@Sendable (AdminPostRequest) async -> AdminPostReply)?

        /// Sources from closures and a registry.
        public init(
            isServing: @escaping @Sendable () -> Bool,
            status: @escaping @Sendable () -> any Encodable & Sendable,
            registry: PrometheusCollectorRegistry,
            extraMetrics: @escaping @Sendable () -> String = { "" },
            regionStatus: @escaping @Sendable (String) -> RegionStatus? = { _ in nil },
            fleetHealth: @escaping @Sendable (Int, Int) throws -> any Encodable & Sendable = { _, _ in
                [String: String]()
            },
            reloadVerdict: @escaping @Sendable () -> (any Encodable & Sendable)? = { nil },
            post: (@Sendable (AdminPostRequest) async -> AdminPostReply)? = nil
        ) {
            self.isServing = isServing
            self.status = status
            self.registry = registry
            self.extraMetrics = extraMetrics
            self.regionStatus = regionStatus
            self.fleetHealth = fleetHealth
            self.reloadVerdict = reloadVerdict
            self.post = post
        }
    }

    /// The endpoint's own bounds: it answers operators and Prometheus, not the fleet.
    public struct Limits: Sendable, Hashable {
        /// Open connections at most (`limits.admin_max_connections`); more are closed at accept.
        public var maxConnections: Int
        /// A connection with no request for this long is closed (`limits.admin_idle_timeout_seconds`).
        public var idleTimeout: TimeAmount

        /// Limits from their parts (defaults: 16 connections, 30 s).
        public init(maxConnections: Int = 16, idleTimeout: TimeAmount = .seconds(30)) {
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
        }
    }

    private let socket: ListenerSocket
    private let sources: Sources
    private let limits: Limits
    private let open = Atomic<Int>(0)
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onBound: @Sendable (SocketAddress) -> Void

    /// An admin endpoint; nothing happens until `run()`.
    public init(
        socket: ListenerSocket,
        sources: Sources,
        limits: Limits = Limits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.socket = socket
        self.sources = sources
        self.limits = limits
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onBound = onBound
    }

    /// `admin endpoint on 127.0.0.1:9477`.
    public var description: String { "admin endpoint on \(socket)" }

    /// Binds and serves until graceful shutdown or cancellation.
    public func run() async throws {
        let sources = self.sources
        let limits = self.limits
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.admit(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout))
                    try sync.addHandler(CloseOnIdle())
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(AdminHTTPHandler(sources: sources))
                }
            }
        let serverChannel: any Channel
        switch socket {
        case .address(let address):
            if let path = address.unixSocketPath {
                serverChannel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
                    .get()
            } else {
                serverChannel = try await bootstrap.bind(host: address.host, port: address.port).get()
            }
        case .inherited(let fd):
            serverChannel = try await bootstrap.withBoundSocket(fd).get()
        }
        if let local = serverChannel.localAddress {
            let text = ListenAddress(local)?.description ?? "\(local)"
            logger.notice("admin endpoint bound", metadata: ["address": "\(text)"])
            onBound(local)
        }
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await serverChannel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
    }
}

extension AdminServer {
    /// Counts the connection in, or refuses it when `limits.maxConnections` are open.
    func admit(_ channel: any Channel) -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now <= limits.maxConnections else {
            open.wrappingSubtract(1, ordering: .relaxed)
            logger.warning("admin connection refused: too many open", metadata: ["limit": "\(limits.maxConnections)"])
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in open.wrappingSubtract(1, ordering: .relaxed) }
        return true
    }

    /// Open admin connections now.
    public var openConnections: Int { open.load(ordering: .relaxed) }
}

/// Closes an admin connection that had no traffic for the idle timeout (unless it waits for a POST's answer).
final class CloseOnIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            let busy = (try? context.pipeline.syncOperations.handler(type: AdminHTTPHandler.self))?.isAnswering ?? false
            if !busy { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// Routes one admin request at a time to a response. Event-loop bound.
final class AdminHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The largest POST body accepted.
    static let maxPostBytes = 64 << 10

    private let sources: AdminServer.Sources
    private var request: HTTPRequestHead?
    private var hasBody = false
    private var body: [UInt8] = []
    private var bodyTooLarge = false
    /// True while a POST's answer is being computed (the connection is then not idle).
    private(set) var isAnswering = false

    init(sources: AdminServer.Sources) {
        self.sources = sources
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            hasBody = false
            body = []
            bodyTooLarge = false
        case .body(var part):
            hasBody = true
            if request?.method == .POST && !bodyTooLarge {
                if body.count + part.readableBytes > Self.maxPostBytes {
                    bodyTooLarge = true
                    body = []
                } else {
                    body += part.readBytes(length: part.readableBytes) ?? []
                }
            }
        case .end:
            guard let head = request else { return }
            request = nil
            if head.method == .POST, let post = sources.post, !Self.isQuarantineAcknowledgement(head.uri) {
                guard !bodyTooLarge else {
                    write(.text(.payloadTooLarge, "a request body of at most 64 KiB\n"), for: head, context: context)
                    return
                }
                answerPost(head, body: body, post: post, context: context)
                body = []
                return
            }
            if !hasBody, head.method == .POST {
                write(Self.action(head, sources: sources), for: head, context: context)
                return
            }
            if !hasBody, head.method == .GET || head.method == .HEAD, let query = Self.fleetQuery(head.uri) {
                answerFleet(query, head: head, context: context)
                return
            }
            let response =
                hasBody
                ? AdminResponse.text(.methodNotAllowed, "no request body accepted\n")
                : Self.route(head, sources: sources)
            write(response, for: head, context: context)
        }
    }

    static func route(_ head: HTTPRequestHead, sources: AdminServer.Sources) -> AdminResponse {
        guard head.method == .GET || head.method == .HEAD else {
            return .text(.methodNotAllowed, "only GET and HEAD\n")
        }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        if path.hasPrefix("/health/") {
            return regionHealth(String(path.dropFirst("/health/".count)).uppercased(), sources: sources)
        }
        switch path {
        case "/health":
            guard sources.isServing() else { return .text(.serviceUnavailable, "not serving\n") }
            // Still "the process serves" (200); a full disk is named in the body (and in /health/CC, 503).
            return .text(.ok, sources.healthDetail().map { "degraded: \($0)\n" } ?? "ok\n")
        case "/status":
            return json(sources.status())
        case "/reload":
            guard let verdict = sources.reloadVerdict() else { return .text(.notFound, "no reloader\n") }
            return json(verdict)
        case "/metrics":
            // The extra source runs first: it may publish scrape-time figures into the registry.
            let extra = Array(sources.extraMetrics().utf8)
            return AdminResponse(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: sources.registry.emitToBuffer() + extra)
        default:
            return .text(.notFound, "not found; try /health, /health/CC, /status, /fleet or /metrics\n")
        }
    }

    /// `/health/CC`: 200 while the node serves and the region's writer is ok; 503 while it is
    /// starting, degraded (disk full, corrupt file...), stopped or catching up from the stream (a
    /// followed region before it caught up), or the node is not serving; 404 when
    /// this node does not own the region. HAProxy marks the region's backend down on anything but 200.
    static func regionHealth(_ region: String, sources: AdminServer.Sources) -> AdminResponse {
        guard let status = sources.regionStatus(region) else {
            return .text(.notFound, "region \(region) is not served by this node\n")
        }
        guard sources.isServing() else { return .text(.serviceUnavailable, "not serving\n") }
        // Issue 20: the publish lag rides along (HAProxy looks at the status code only).
        let lag = status.publishLagEntries.map {
            " publish_lag_entries=\($0) publish_lag_seconds=\(status.publishLagSeconds ?? 0)"
        } ?? ""
        switch status.state {
        case "ok" where !status.quarantineUnacknowledged.isEmpty:
            // Serving in new files: still 200 for the balancer, the quarantine named until acknowledged.
            let files = status.quarantineUnacknowledged.joined(separator: " ")
            return .text(
                .ok, "ok \(region); quarantined, not acknowledged: \(files) (horgosctl shards acknowledge \(region))\n")
        case "ok":
            return .text(.ok, "ok \(region)\(lag)\n")
        case "catching_up":
            return .text(
                .serviceUnavailable,
                "\(region) catching up from the stream (\(status.followLagEntries ?? 0) entries to go)\(lag)\n")
        case "degraded":
            return .text(.serviceUnavailable, "\(region) degraded: \(status.fault ?? "?") \(status.message ?? "")\n")
        default:
            return .text(.serviceUnavailable, "\(region) \(status.state)\n")
        }
    }

    /// Whether `uri` is `/quarantine/CC/acknowledge` (answered here, not by `Sources.post`).
    static func isQuarantineAcknowledgement(_ uri: String) -> Bool {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let parts = path.split(separator: "/")
        return parts.count == 3 && parts[0] == "quarantine" && parts[2] == "acknowledge"
    }

    /// `POST /quarantine/CC/acknowledge`; every other POST is 405 here.
    static func action(_ head: HTTPRequestHead, sources: AdminServer.Sources) -> AdminResponse {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let parts = path.split(separator: "/")
        guard parts.count == 3, parts[0] == "quarantine", parts[2] == "acknowledge" else {
            return .text(.methodNotAllowed, "POST only on /quarantine/CC/acknowledge\n")
        }
        let region = parts[1].uppercased()
        do {
            guard let answer = try sources.acknowledgeQuarantine(region) else {
                return .text(.notFound, "region \(region) is not served by this node\n")
            }
            return json(answer)
        } catch {
            return .text(.internalServerError, "the acknowledgement could not be recorded: \(error)\n")
        }
    }

    /// The thresholds of `/fleet?low_soc=N&max_cell_temp=N`, or nil for another path.
    static func fleetQuery(_ uri: String) -> (lowSOC: Int, maxCellTemp: Int)? {
        let parts = uri.split(separator: "?", maxSplits: 1)
        guard parts.first == "/fleet" else { return nil }
        var result = (lowSOC: 10, maxCellTemp: 55)
        for pair in parts.dropFirst().first?.split(separator: "&") ?? [] {
            let keyValue = pair.split(separator: "=", maxSplits: 1)
            guard keyValue.count == 2, let value = Int(keyValue[1]) else { continue }
            if keyValue[0] == "low_soc" { result.lowSOC = value }
            if keyValue[0] == "max_cell_temp" { result.maxCellTemp = value }
        }
        return result
    }

    /// Answers `/fleet` from the thread pool (the shard reads must not block the event loop).
    private func answerFleet(
        _ query: (lowSOC: Int, maxCellTemp: Int), head: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        let sources = self.sources
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () -> [UInt8] in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var body = try encoder.encode(sources.fleetHealth(query.lowSOC, query.maxCellTemp))
            body.append(UInt8(ascii: "\n"))
            return Array(body)
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let body):
                handler.write(AdminResponse(status: .ok, contentType: "application/json", body: body), for: head,
                              context: context)
            case .failure(let error):
                handler.write(.text(.internalServerError, "fleet health cannot be read: \(error)\n"), for: head,
                              context: context)
            }
        }
    }

    /// Answers a POST: who is asking (`SO_PEERCRED` on a Unix socket, the address over TCP), then the
    /// daemon's handler off the event loop, then the reply on it.
    private func answerPost(
        _ head: HTTPRequestHead, body: [UInt8], post: @escaping @Sendable (AdminPostRequest) async -> AdminPostReply,
        context: ChannelHandlerContext
    ) {
        isAnswering = true
        let channel = context.channel
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let claimed = head.headers.first(name: AdminPostRequest.claimedUserHeader)
        AdminPeer.of(channel).whenComplete { result in
            let peer = (try? result.get()) ?? AdminPeer(transport: "unknown")
            let request = AdminPostRequest(path: path, body: body, peer: peer, claimedUser: claimed)
            let promise = channel.eventLoop.makePromise(of: AdminPostReply.self)
            promise.completeWithTask { await post(request) }
            promise.futureResult.whenComplete { result in
                let (handler, context) = loopBound.value
                handler.isAnswering = false
                switch result {
                case .success(let reply):
                    handler.write(
                        AdminResponse(
                            status: HTTPResponseStatus(statusCode: reply.status), contentType: reply.contentType,
                            body: reply.body), for: head, context: context)
                case .failure(let error):
                    handler.write(.text(.internalServerError, "\(error)\n"), for: head, context: context)
                }
            }
        }
    }

    static func json(_ value: any Encodable) -> AdminResponse {
        let encoder = DaemonStatus.encoder()
        do {
            var body = try encoder.encode(value)
            body.append(UInt8(ascii: "\n"))
            return AdminResponse(status: .ok, contentType: "application/json", body: Array(body))
        } catch {
            return .text(.internalServerError, "cannot be encoded: \(error)\n")
        }
    }

    private func write(_ response: AdminResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(
                .head(
                    HTTPResponseHead(
                        version: head.version, status: response.status,
                        headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension AdminHTTPHandler: Sendable {}

/// One admin response before encoding.
struct AdminResponse {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]

    static func text(_ status: HTTPResponseStatus, _ text: String) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
    }
}
