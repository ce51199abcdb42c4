import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The server TLS context, swappable at run time (SIGHUP reloads certificates and the CA).
///
/// New connections take the current context; live ones keep the one they started with.
public final class ReloadableTLSContext: Sendable {
    private let current: Mutex<NIOSSLContext>

    public init(_ context: NIOSSLContext) { self.current = Mutex(context) }

    public var context: NIOSSLContext { current.withLock { $0 } }

    public func replace(with context: NIOSSLContext) { current.withLock { $0 = context } }
}

/// Limits of the telemetry listener (all from configuration).
public struct ListenerLimits: Sendable, Hashable {
    public var handshakeTimeout: TimeAmount
    public var idleTimeout: TimeAmount
    public var maxPayload: Int

    public init(handshakeTimeout: TimeAmount = .seconds(10), idleTimeout: TimeAmount = .seconds(90),
                maxPayload: Int = WireFormat.defaultMaxPayload) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.maxPayload = maxPayload
    }
}

/// The mutual-TLS telemetry listener: accepts, applies connection limits, and builds each
/// connection's pipeline (handshake timeout, TLS, idle timeout, frame decoder, session).
///
/// ```
///   socket -> [TLS] -> [HandshakeTimeout] -> [PartialFrameBudget] -> [FrameChannelDecoder] -> [FramedBytes]
///          -> [FrameIdleTimeout] -> [SessionHandler]
/// ```
/// The limits are read per connection, so a reload (``apply(_:session:)``) reaches new connections.
public final class TelemetryListener: Sendable {
    public let tls: ReloadableTLSContext
    public let registry: ConnectionRegistry
    let environment: SessionEnvironment
    private let current: Mutex<(listener: ListenerLimits, session: SessionLimits)>
    /// The limits new connections get.
    public var limits: ListenerLimits { current.withLock { $0.listener } }
    let group: any EventLoopGroup
    let serverChannel = Mutex<(any Channel)?>(nil)
    let handshakeTimeouts: @Sendable () -> Void
    let refusedAtAccept: @Sendable (ConnectionRegistry.Refusal) -> Void

    public init(
        tls: ReloadableTLSContext, registry: ConnectionRegistry, environment: SessionEnvironment,
        limits: ListenerLimits, group: any EventLoopGroup,
        handshakeTimedOut: @escaping @Sendable () -> Void = {},
        refusedAtAccept: @escaping @Sendable (ConnectionRegistry.Refusal) -> Void = { _ in }
    ) {
        self.tls = tls
        self.registry = registry
        self.environment = environment
        self.current = Mutex((limits, environment.limits))
        self.group = group
        self.handshakeTimeouts = handshakeTimedOut
        self.refusedAtAccept = refusedAtAccept
    }

    /// Where to listen: an address to bind, or a socket inherited from systemd.
    public enum Binding: Sendable {
        case address(host: String, port: Int)
        case inherited(fd: CInt)
    }

    /// Binds (or adopts) the listening socket and starts accepting; returns the bound address.
    @discardableResult
    public func start(_ binding: Binding) async throws -> SocketAddress {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
        let channel: any Channel
        switch binding {
        case .address(let host, let port):
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .inherited(let fd):
            channel = try await bootstrap.withBoundSocket(fd).get()
        }
        serverChannel.withLock { $0 = channel }
        return channel.localAddress!
    }

    /// Replaces the limits for connections accepted from now on (SIGHUP reload of `limits.*`).
    public func apply(_ limits: ListenerLimits, session: SessionLimits) {
        current.withLock { $0 = (limits, session) }
    }

    private func initialize(_ channel: any Channel) throws {
        if let refusal = registry.admit(channel) {
            refusedAtAccept(refusal)
            channel.close(promise: nil)
            return
        }
        let (limits, sessionLimits) = current.withLock { ($0.listener, $0.session) }
        var environment = self.environment
        environment.limits = sessionLimits
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
        // After the TLS handler: it must see TLSUserEvent.handshakeCompleted, which NIOSSLHandler fires
        // towards the tail. Placed before it, the timeout never heard of the handshake and closed every
        // session once `handshakeTimeout` had passed.
        try pipeline.addHandler(HandshakeTimeoutHandler(timeout: limits.handshakeTimeout, onTimeout: handshakeTimeouts))
        let partial = environment.bufferBudget.map { PartialFrameBudgetHandler(budget: $0) }
        if let partial { try pipeline.addHandler(partial) }
        try pipeline.addHandler(ByteToMessageHandler(FrameChannelDecoder(maxPayload: limits.maxPayload)))
        if let partial { try pipeline.addHandler(FramedBytesHandler(partial: partial)) }
        try pipeline.addHandler(FrameIdleTimeoutHandler(timeout: limits.idleTimeout))
        try pipeline.addHandler(SessionHandler(environment: environment))
    }

    /// Stops accepting, asks every session to finish (ACK what is committed, BYE), and waits for
    /// them to close, at most `timeout`; connections still open then are closed.
    public func drain(timeout: Duration) async {
        if let channel = serverChannel.withLock({ $0 }) {
            try? await channel.close()
        }
        for channel in registry.channels {
            channel.eventLoop.execute {
                if let session = try? channel.pipeline.syncOperations.handler(type: SessionHandler.self) {
                    session.startDraining(.serverShutdown)
                } else {
                    channel.close(promise: nil)
                }
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while registry.count > 0 && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in registry.channels { try? await channel.close() }
    }
}
