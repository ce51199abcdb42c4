import HorgosProxyProtocol
import Logging
import NIOCore
import NIOExtras
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

/// The limits a listener gives each new connection (all from `limits.*`).
public struct ListenerLimits: Sendable, Hashable {
    /// The TLS handshake and the protocol's opening (HELLO, login) must finish within this.
    public var handshakeTimeout: TimeAmount
    /// A session with no complete frame for this long is ended.
    public var idleTimeout: TimeAmount
    /// The largest frame payload (data unit) accepted, refused from the header before it is buffered.
    public var maxPayload: Int

    /// Limits from their parts (defaults: 10 s, 90 s, 64 KiB).
    public init(handshakeTimeout: TimeAmount = .seconds(10), idleTimeout: TimeAmount = .seconds(90),
                maxPayload: Int = 65_536) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.maxPayload = maxPayload
    }
}

/// One listening socket serving protocol `P` through the connection pipeline: a listener is configuration
/// plus a protocol value, nothing more.
///
/// ```
///   socket -> [ProxyProtocol v2] -> [TLS] -> [HandshakeTimeout] -> [PartialFrameBudget] -> [P.Decoder]
///          -> [FrameIdleTimeout] -> [ConnectionHandler<P>]
/// ```
/// Admission (the daemon-wide ``ConnectionRegistry``: `limits.max_connections` and `..._per_address` hold
/// for every listener together) happens at accept, or once the PROXY header named the client. Without TLS
/// (a GB/T 32960 listener on a private APN) the environment's plain peer is the session's peer. The limits
/// are read per connection, so a reload (``apply(_:wireProtocol:)``) reaches new connections; the registry
/// carries the reloaded timeouts and the revocation sweep to open ones. ``drain(timeout:)`` quiesces every
/// connection (the protocol says its goodbye) within the drain timeout.
public final class Listener<P: IngestProtocol>: Sendable {
    /// A listener's own configuration.
    public struct Configuration: Sendable {
        /// `telemetry` or `gbt32960`: `/status`, and the systemd `FileDescriptorName=` it adopts.
        public var name: String
        /// How logs call it (`telemetry`, `GB/T 32960`); the name when nil.
        public var title: String?
        /// Where it listens.
        public var socket: ListenerSocket
        /// `listen.proxy_protocol`: read a PROXY v2 header before TLS and count limits under its address.
        public var proxyProtocol: ProxyProtocolMode
        /// The limits new connections get.
        public var limits: ListenerLimits

        /// A configuration from its parts.
        public init(name: String, title: String? = nil, socket: ListenerSocket, proxyProtocol: ProxyProtocolMode = .off,
                    limits: ListenerLimits = ListenerLimits()) {
            self.name = name
            self.title = title
            self.socket = socket
            self.proxyProtocol = proxyProtocol
            self.limits = limits
        }
    }

    /// Its name (`telemetry`, `gbt32960`).
    public let name: String
    /// How logs call it (`telemetry listener`, `GB/T 32960 listener`).
    public let title: String
    /// Where it listens.
    public let socket: ListenerSocket
    /// The TLS context (nil: plain TCP, the environment names the peer).
    public let tls: ReloadableTLSContext?
    /// The daemon-wide connection registry.
    public let registry: ConnectionRegistry
    let proxyProtocol: ProxyProtocolMode
    private let current: Mutex<(limits: ListenerLimits, environment: PipelineEnvironment<P>)>
    let group: any EventLoopGroup
    let serverChannel = Mutex<(any Channel)?>(nil)
    /// Tracks the accepted connections for the drain: closes the listener, tells each connection to
    /// quiesce (`ChannelShouldQuiesceEvent`) and completes when the last one closed.
    let quiescing: ServerQuiescingHelper
    let proxyHeaderRejected: @Sendable (ProxyHeaderError) -> Void

    /// A listener; nothing is bound until ``start()``.
    public init(
        configuration: Configuration, tls: ReloadableTLSContext?, registry: ConnectionRegistry,
        environment: PipelineEnvironment<P>, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        proxyHeaderRejected: @escaping @Sendable (ProxyHeaderError) -> Void = { _ in }
    ) {
        self.name = configuration.name
        self.title = (configuration.title ?? configuration.name) + " listener"
        self.socket = configuration.socket
        self.proxyProtocol = configuration.proxyProtocol
        self.tls = tls
        self.registry = registry
        self.current = Mutex((configuration.limits, environment))
        self.group = group
        self.quiescing = ServerQuiescingHelper(group: group)
        self.proxyHeaderRejected = proxyHeaderRejected
    }

    /// The limits new connections get.
    public var limits: ListenerLimits { current.withLock { $0.limits } }

    /// The protocol new connections get.
    public var wireProtocol: P { current.withLock { $0.environment.wireProtocol } }

    /// The pipeline metrics of this listener's protocol.
    public var metrics: PipelineMetrics { current.withLock { $0.environment.metrics } }

    /// Binds (or adopts) the listening socket and starts accepting; returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { [quiescing] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialize(channel) }
            }
        let channel: any Channel
        switch socket {
        case .address(let address):
            channel = try await bootstrap.bind(host: address.host, port: address.port).get()
        case .inherited(let fd):
            channel = try await bootstrap.withBoundSocket(fd).get()
        }
        serverChannel.withLock { $0 = channel }
        return channel.localAddress!
    }

    /// A reload of `limits.*`: connections accepted from now on get `limits` (and `wireProtocol`'s
    /// session limits, when given). Open connections get the new timeouts from the registry.
    public func apply(_ limits: ListenerLimits, wireProtocol: P? = nil) {
        current.withLock {
            $0.limits = limits
            if let wireProtocol { $0.environment.wireProtocol = wireProtocol }
        }
    }

    private func initialize(_ channel: any Channel) throws {
        let metrics = self.metrics
        guard proxyProtocol == .v2 else {
            if let refusal = registry.admit(channel, protocolName: P.name) {
                metrics.refused(refusal.rawValue.uppercased())
                channel.close(promise: nil)
                return
            }
            try addConnectionHandlers(channel, clientAddress: nil)
            return
        }
        // Behind a load balancer: the limits count the client's address from the PROXY header, so
        // admission waits for it; the header handler alone holds the connection until then (no byte
        // reaches TLS).
        let registry = self.registry
        try channel.pipeline.syncOperations.addHandler(
            ProxyProtocolHandler(
                timeout: limits.handshakeTimeout,
                onHeader: { [self] channel, header in
                    let address = header.clientIPAddress ?? channel.remoteAddress?.ipAddress ?? "unknown"
                    if let refusal = registry.admit(channel, address: address, protocolName: P.name) {
                        metrics.refused(refusal.rawValue.uppercased())
                        throw ProxyAdmissionRefused(refusal: refusal)
                    }
                    try addConnectionHandlers(channel, clientAddress: address)
                },
                onRejected: proxyHeaderRejected))
    }

    /// Installs a connection's handlers after admission (also used by tests and the session benchmark on
    /// embedded channels).
    func addConnectionHandlers(_ channel: any Channel, clientAddress: String?) throws {
        let (limits, environment) = current.withLock { ($0.limits, $0.environment) }
        try channel.pipeline.syncOperations.addConnectionHandlers(
            environment: environment, limits: limits, tls: tls?.context, clientAddress: clientAddress)
    }

    /// Stops accepting, asks every connection to finish (answer what is committed, the protocol's goodbye)
    /// and waits for them to close, at most `timeout`; connections still open then are closed.
    public func drain(timeout: Duration) async {
        let loop = group.next()
        let quiesced = loop.makePromise(of: Void.self)
        quiescing.initiateShutdown(promise: quiesced)
        let finished = loop.makePromise(of: Void.self)
        let once = Mutex(false)
        let finish: @Sendable () -> Void = {
            if once.withLock({ done in defer { done = true }; return !done }) { finished.succeed() }
        }
        quiesced.futureResult.whenComplete { _ in finish() }
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let deadline = loop.scheduleTask(in: .nanoseconds(nanoseconds)) { finish() }
        try? await finished.futureResult.get()
        deadline.cancel()
        if let channel = serverChannel.withLock({ $0 }) { try? await channel.close() }
        for channel in registry.channels(protocolName: P.name) { try? await channel.close() }
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Installs the pipeline of one admitted connection of protocol `P` (what ``Listener`` does after
    /// admission): TLS when `tls` is given, the handshake timer, the partial-frame budget when the
    /// environment has one, `P`'s decoder, the idle timer, and the ``ConnectionHandler``.
    public func addConnectionHandlers<P: IngestProtocol>(
        environment: PipelineEnvironment<P>, limits: ListenerLimits, tls: NIOSSLContext?,
        clientAddress: String? = nil
    ) throws {
        if let tls { try addHandler(NIOSSLServerHandler(context: tls)) }
        // After the TLS handler: it must see TLSUserEvent.handshakeCompleted, which NIOSSLHandler fires
        // towards the tail; it ends when the protocol's opening is accepted (SessionEvent.helloAccepted).
        let metrics = environment.metrics
        try addHandler(HandshakeTimeoutHandler(timeout: limits.handshakeTimeout) { metrics.handshakeTimedOut() })
        let partial = environment.budget.map { PartialFrameBudgetHandler(budget: $0) }
        if let partial { try addHandler(partial) }
        try addHandler(ByteToMessageHandler(environment.wireProtocol.makeDecoder(maxPayload: limits.maxPayload)))
        try addHandler(FrameIdleTimeoutHandler<P.Session.Inbound>(timeout: limits.idleTimeout))
        try addHandler(
            ConnectionHandler(environment: environment, clientAddress: clientAddress, partial: partial),
            name: ConnectionHandler<P>.name)
    }
}

/// The per-address or total limit refused a connection whose PROXY header named its client.
struct ProxyAdmissionRefused: Error {
    var refusal: ConnectionRegistry.Refusal
}
