import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization

/// Where a listener gets its socket: bind an address, or adopt one inherited from systemd.
public enum ListenerSocket: Sendable, Hashable, CustomStringConvertible {
    /// Bind this address (port 0: any free port).
    case address(ListenAddress)
    /// Adopt an already bound and listening socket (systemd socket activation, see ``SystemdListeners``).
    case inherited(fileDescriptor: CInt)

    /// The address or `fd N`.
    public var description: String {
        switch self {
        case .address(let address): address.description
        case .inherited(let fd): "inherited fd \(fd)"
        }
    }
}

/// The mutual-TLS telemetry listener: accepts connections, enforces connection limits and the handshake
/// timeout, reads each peer's ``PeerIdentity`` and refuses revoked certificates and foreign markets.
///
/// A `Service`: `run()` binds, reports the bound address through `onBound`, and serves until graceful
/// shutdown or cancellation, then stops accepting and closes its connections. Until the session layer
/// lands, an accepted connection is handed to `onSession` (default: logged and held open).
/// Limits: `limits.max_connections` total and `limits.max_connections_per_address` per source IP;
/// over either, the new connection is closed before the handshake.
public final class TelemetryListener: Service, CustomStringConvertible, Sendable {
    /// Called on the channel's event loop once a peer is authenticated and allowed.
    public typealias SessionStarter = @Sendable (PeerIdentity, any Channel) -> Void
    /// Called when a connection is refused, with the reason and a detail for the log.
    public typealias RefusalObserver = @Sendable (PeerRefusal, String) -> Void

    private let socket: ListenerSocket
    private let tlsContext: Mutex<NIOSSLContext>
    private let policy: Mutex<PeerAdmissionPolicy>
    private let limits: HorgosConfiguration.Limits
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onBound: @Sendable (SocketAddress) -> Void
    private let onSession: SessionStarter
    private let onRefusal: RefusalObserver
    private let connections: ConnectionTable

    /// A listener; nothing happens until `run()`.
    ///
    /// - Parameters:
    ///   - socket: the address to bind or an inherited socket.
    ///   - tlsContext: from ``TelemetryTLS``; replace it on reload with ``replaceTLSContext(_:)``.
    ///   - policy: the regions served and the revocation list.
    ///   - onBound: told the local address once the socket listens (e.g. to send READY=1).
    ///   - onSession: given each admitted connection.
    ///   - onRefusal: told each refusal (already logged and counted by the listener).
    public init(
        socket: ListenerSocket,
        tlsContext: NIOSSLContext,
        policy: PeerAdmissionPolicy,
        limits: HorgosConfiguration.Limits,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in },
        onSession: SessionStarter? = nil,
        onRefusal: @escaping RefusalObserver = { _, _ in }
    ) {
        self.socket = socket
        self.tlsContext = Mutex(tlsContext)
        self.policy = Mutex(policy)
        self.limits = limits
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.onBound = onBound
        self.onRefusal = onRefusal
        self.connections = ConnectionTable()
        self.onSession =
            onSession ?? { identity, channel in
                logger.info(
                    "session held open (session layer not yet attached)",
                    metadata: ["peer": "\(identity)", "remote": "\(channel.remoteAddress?.description ?? "?")"])
            }
    }

    /// `telemetry listener on 127.0.0.1:7443`.
    public var description: String { "telemetry listener on \(socket)" }

    /// Connections currently open (handshaking or in session).
    public var connectionCount: Int { connections.count }

    /// Uses a new TLS context (new certificates) for connections accepted from now on.
    public func replaceTLSContext(_ context: NIOSSLContext) {
        tlsContext.withLock { $0 = context }
    }

    /// Uses new admission rules (regions, revocation) for handshakes completed from now on.
    public func replacePolicy(_ newPolicy: PeerAdmissionPolicy) {
        policy.withLock { $0 = newPolicy }
    }

    /// Binds and serves until graceful shutdown or cancellation.
    public func run() async throws {
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
        let serverChannel: any Channel
        switch socket {
        case .address(let address):
            serverChannel = try await bootstrap.bind(host: address.host, port: address.port).get()
        case .inherited(let fd):
            serverChannel = try await bootstrap.withBoundSocket(fd).get()
        }
        if let local = serverChannel.localAddress {
            let text = ListenAddress(local)?.description ?? "\(local)"
            logger.notice("telemetry listener bound", metadata: ["address": "\(text)"])
            onBound(local)
        }
        let connections = self.connections
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await serverChannel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            serverChannel.close(promise: nil)
            connections.closeAll()
        }
        logger.notice("telemetry listener stopped")
    }

    private func initialize(_ channel: any Channel) throws {
        let remoteIP = channel.remoteAddress?.ipAddress ?? "unknown"
        guard connections.admit(channel, address: remoteIP, limits: limits) else {
            Counter(label: "horgos_connections_refused_total", dimensions: [("reason", "connection_limit")])
                .increment()
            logger.warning("connection refused: connection limit reached", metadata: ["remote": "\(remoteIP)"])
            onRefusal(.connectionLimit, remoteIP)
            channel.close(promise: nil)
            return
        }
        let connections = self.connections
        channel.closeFuture.whenComplete { _ in connections.remove(channel, address: remoteIP) }
        let context = tlsContext.withLock { $0 }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLServerHandler(context: context))
        try sync.addHandler(
            PeerAdmissionHandler(
                policy: policy.withLock { $0 },
                handshakeTimeout: .seconds(Int64(limits.handshakeTimeoutSeconds)),
                logger: logger,
                onAdmitted: onSession,
                onRefusal: onRefusal))
    }
}

/// Who may open a session: the served regions and the revocation list in force.
public struct PeerAdmissionPolicy: Sendable {
    /// Markets (subject C) this node serves.
    public var regions: Set<String>
    /// The deny list, shared and reloadable.
    public var revocations: RevocationListHolder

    /// A policy from its parts.
    public init(regions: Set<String>, revocations: RevocationListHolder) {
        self.regions = regions
        self.revocations = revocations
    }

    /// Why an identity is refused, or nil when it is admitted.
    public func refusal(for identity: PeerIdentity) -> PeerRefusal? {
        if revocations.isRevoked(identity) { return .revoked }
        if !regions.contains(identity.market) { return .unknownMarket }
        return nil
    }
}

/// Why a connection was refused after (or during) the TLS handshake; the `reason` label of the metric.
public enum PeerRefusal: String, Sendable, Hashable {
    /// `limits.max_connections` or `limits.max_connections_per_address` reached.
    case connectionLimit = "connection_limit"
    /// The TLS handshake failed (no certificate, wrong CA, expired, protocol version...).
    case handshakeFailed = "handshake_failed"
    /// The handshake did not finish within `limits.handshake_timeout_seconds`.
    case handshakeTimeout = "handshake_timeout"
    /// The certificate does not name an acceptable identity (see ``PeerIdentityError``).
    case invalidIdentity = "invalid_identity"
    /// The certificate serial or VIN is on the deny list.
    case revoked
    /// The certificate's market is not a configured region.
    case unknownMarket = "unknown_market"
}

/// Closes a connection whose handshake takes too long, and after the handshake derives and checks the
/// peer identity. One per connection; event-loop bound.
final class PeerAdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let policy: PeerAdmissionPolicy
    private let handshakeTimeout: TimeAmount
    private let logger: Logger
    private let onAdmitted: TelemetryListener.SessionStarter
    private let onRefusal: TelemetryListener.RefusalObserver
    private var timeout: Scheduled<Void>?
    private var handshakeDone = false
    private var refused = false

    init(
        policy: PeerAdmissionPolicy, handshakeTimeout: TimeAmount, logger: Logger,
        onAdmitted: @escaping TelemetryListener.SessionStarter,
        onRefusal: @escaping TelemetryListener.RefusalObserver
    ) {
        self.policy = policy
        self.handshakeTimeout = handshakeTimeout
        self.logger = logger
        self.onAdmitted = onAdmitted
        self.onRefusal = onRefusal
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = self.logger
        let onRefusal = self.onRefusal
        timeout = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            Self.countRefusal(.handshakeTimeout)
            let remote = channel.remoteAddress?.description ?? "?"
            logger.info("connection refused", metadata: ["reason": "handshake_timeout", "remote": "\(remote)"])
            onRefusal(.handshakeTimeout, remote)
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        handshakeDone = true
        timeout?.cancel()
        timeout = nil
        let remote = context.channel.remoteAddress?.description ?? "?"
        let identity: PeerIdentity
        do {
            let certificate = try TelemetryTLS.peerCertificate(of: context.pipeline.syncOperations)
            identity = try PeerIdentity(certificate: certificate)
        } catch {
            refuse(context, .invalidIdentity, remote: remote, detail: "\(error)")
            return
        }
        if let refusal = policy.refusal(for: identity) {
            refuse(context, refusal, remote: remote, detail: "\(identity)")
            return
        }
        Counter(
            label: "horgos_handshakes_total", dimensions: [("result", "accepted"), ("role", identity.role.rawValue)]
        )
        .increment()
        logger.info(
            "peer authenticated",
            metadata: [
                "peer": "\(identity)", "remote": "\(remote)", "alpn": "\(negotiated ?? "-")",
            ])
        onAdmitted(identity, context.channel)
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshakeDone {
            refuse(
                context, .handshakeFailed, remote: context.channel.remoteAddress?.description ?? "?",
                detail: "\(error)")
        } else {
            context.fireErrorCaught(error)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ refusal: PeerRefusal, remote: String, detail: String) {
        guard !refused else { return }
        refused = true
        timeout?.cancel()
        timeout = nil
        Self.countRefusal(refusal)
        onRefusal(refusal, detail)
        logger.notice(
            "connection refused",
            metadata: ["reason": "\(refusal.rawValue)", "remote": "\(remote)", "detail": "\(detail)"])
        context.close(promise: nil)
    }

    static func countRefusal(_ refusal: PeerRefusal) {
        Counter(label: "horgos_connections_refused_total", dimensions: [("reason", refusal.rawValue)]).increment()
    }
}

@available(*, unavailable)
extension PeerAdmissionHandler: Sendable {}

/// Open connections, counted in total and per source address, closable all at once on shutdown.
final class ConnectionTable: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var perAddress: [String: Int] = [:]
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.channels.count } }

    func admit(_ channel: any Channel, address: String, limits: HorgosConfiguration.Limits) -> Bool {
        state.withLock { state in
            guard state.channels.count < limits.maxConnections,
                state.perAddress[address, default: 0] < limits.maxConnectionsPerAddress
            else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            state.perAddress[address, default: 0] += 1
            return true
        }
    }

    func remove(_ channel: any Channel, address: String) {
        state.withLock { state in
            guard state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            let left = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = left > 0 ? left : nil
        }
    }

    func closeAll() {
        let channels = state.withLock { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
    }
}
