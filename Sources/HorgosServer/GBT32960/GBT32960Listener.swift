import HorgosConfig
import HorgosGBT32960
import HorgosProxyProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The GB/T 32960 listener (`listen.gbt32960`): the same limits, certificates and connection
/// registry rules as the native listener, with the GB/T 32960 decoder and session in the pipeline.
///
/// ```
///   socket -> [TLS] -> [HandshakeTimeout] -> [GBT32960ChannelDecoder] -> [FrameIdleTimeout] -> [GBT32960SessionHandler]
/// ```
/// With `gbt32960.tls: off` the TLS and handshake-timeout handlers are left out (allow-listed VINs only).
/// The idle timeout counts decoded frames, not bytes, as on the telemetry listener. A reload of `limits.*`
/// (``apply(_:)``) reaches new connections and the handshake and idle timers of open ones.
public final class GBT32960Listener: Sendable {
    public let registry: ConnectionRegistry
    let tls: ReloadableTLSContext?
    let environment: GBT32960Environment
    private let current: Mutex<ListenerLimits>
    /// The limits new connections get (the configured ones, or the last reload's).
    var limits: ListenerLimits { current.withLock { $0 } }
    let group: any EventLoopGroup
    let serverChannel = Mutex<(any Channel)?>(nil)
    /// `listen.proxy_protocol`: read a PROXY v2 header before TLS, as the native listener does.
    let proxyProtocol: ProxyProtocolMode
    let proxyHeaderRejected: @Sendable (ProxyHeaderError) -> Void

    /// A listener; `tls` nil serves plain TCP (the environment's `plainPeer` then names the peer).
    public init(
        tls: ReloadableTLSContext?, registry: ConnectionRegistry, environment: GBT32960Environment,
        limits: ListenerLimits, group: any EventLoopGroup, proxyProtocol: ProxyProtocolMode = .off,
        proxyHeaderRejected: @escaping @Sendable (ProxyHeaderError) -> Void = { _ in }
    ) {
        self.tls = tls
        self.registry = registry
        self.environment = environment
        self.current = Mutex(limits)
        self.group = group
        self.proxyProtocol = proxyProtocol
        self.proxyHeaderRejected = proxyHeaderRejected
    }

    /// Binds and starts accepting; returns the bound address.
    @discardableResult
    public func start(host: String, port: Int) async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
            .bind(host: host, port: port).get()
        serverChannel.withLock { $0 = channel }
        return channel.localAddress!
    }

    private func initialize(_ channel: any Channel) throws {
        guard proxyProtocol == .v2 else {
            if registry.admit(channel) != nil {
                environment.metrics.error("connection_limit")
                channel.close(promise: nil)
                return
            }
            try addSessionHandlers(channel)
            return
        }
        // Behind a load balancer: admission counts the client's address from the PROXY header; until
        // it has arrived the header handler alone holds the connection (no byte reaches TLS).
        let registry = self.registry
        let metrics = environment.metrics
        try channel.pipeline.syncOperations.addHandler(
            ProxyProtocolHandler(
                timeout: limits.handshakeTimeout,
                onHeader: { [self] channel, header in
                    let address = header.clientIPAddress ?? channel.remoteAddress?.ipAddress ?? "unknown"
                    if let refusal = registry.admit(channel, address: address) {
                        metrics.error("connection_limit")
                        throw ProxyAdmissionRefused(refusal: refusal)
                    }
                    try addSessionHandlers(channel)
                },
                onRejected: proxyHeaderRejected))
    }

    private func addSessionHandlers(_ channel: any Channel) throws {
        let pipeline = channel.pipeline.syncOperations
        let limits = self.limits
        if let tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
            try pipeline.addHandler(HandshakeTimeoutHandler(timeout: limits.handshakeTimeout, onTimeout: {}))
        }
        try pipeline.addHandler(ByteToMessageHandler(GBT32960ChannelDecoder(maxDataLength: limits.maxPayload)))
        try pipeline.addHandler(FrameIdleTimeoutHandler<GBT32960Inbound>(timeout: limits.idleTimeout))
        try pipeline.addHandler(GBT32960SessionHandler(environment: environment))
    }

    /// A reload of `limits.*`: new connections get `limits`; every open one gets the new handshake and
    /// idle timeouts (``SessionTimeoutsReloaded``: a connection still in its TLS handshake re-arms from
    /// its accept, an open session from its last frame; a shorter value already past ends it at once).
    public func apply(_ limits: ListenerLimits) {
        current.withLock { $0 = limits }
        let event = SessionTimeoutsReloaded(handshakeTimeout: limits.handshakeTimeout, idleTimeout: limits.idleTimeout)
        for channel in registry.channels { channel.pipeline.fireUserInboundEventTriggered(event) }
    }

    /// Stops accepting, lets in-flight frames commit and be answered, then closes what is left.
    public func drain(timeout: Duration) async {
        if let channel = serverChannel.withLock({ $0 }) { try? await channel.close() }
        let clock = ContinuousClock()
        let deadline = clock.now + min(timeout, .seconds(2))
        // Answers of committed frames go out on their own; give in-flight commits a moment.
        while registry.count > 0 && clock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        for channel in registry.channels { try? await channel.close() }
    }
}

/// Runs a ``GBT32960Listener`` as a ServiceGroup service. A bind failure is fatal, as for the telemetry
/// listener: it is logged (critical) and thrown, so the daemon stops (exit 1) and never sends READY=1
/// half configured; systemd shows the unit failed.
public struct GBT32960Service: Service, CustomStringConvertible {
    /// The listener it runs (a reload of `limits.*` applies to it).
    public let listener: GBT32960Listener
    private let address: ListenAddress
    private let drainTimeout: Duration
    private let logger: Logger
    private let onBound: @Sendable (SocketAddress) -> Void

    public init(
        listener: GBT32960Listener, address: ListenAddress, drainTimeout: Duration, logger: Logger,
        onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.listener = listener
        self.address = address
        self.drainTimeout = drainTimeout
        self.logger = logger
        self.onBound = onBound
    }

    public var description: String { "GB/T 32960 listener on \(address)" }

    public func run() async throws {
        do {
            let local = try await listener.start(host: address.host, port: address.port)
            logger.notice(
                "GB/T 32960 listener bound",
                metadata: ["address": "\(ListenAddress(local)?.description ?? "\(local)")",
                           "tls": "\(listener.tls != nil ? "on" : "off")"])
            onBound(local)
        } catch {
            logger.critical(
                "GB/T 32960 listener NOT bound; the daemon stops (free the port or change listen.gbt32960)",
                metadata: ["address": "\(address)", "error": "\(error)"])
            throw error
        }
        try? await gracefulShutdown()
        await listener.drain(timeout: Task.isCancelled ? .seconds(1) : drainTimeout)
        logger.notice("GB/T 32960 listener stopped")
    }
}
