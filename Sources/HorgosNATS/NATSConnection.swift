import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Why a NATS call failed without a server answer.
public enum NATSConnectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The connection is down (it reconnects by itself); the call was not sent.
    case notConnected
    /// No reply within the request's timeout.
    case timeout
    /// The connection was closed for good (`close()`).
    case closed
    /// The connection dropped while the call was outstanding.
    case disconnected

    public var description: String {
        switch self {
        case .notConnected: "not connected to any NATS server"
        case .timeout: "no reply in time"
        case .closed: "connection closed"
        case .disconnected: "the connection dropped"
        }
    }
}

/// A NATS client connection on SwiftNIO: connects to one server of a pool (the configured ones plus
/// those the cluster announces in `INFO connect_urls`), upgrades to TLS when the URL says `tls://` or
/// the server requires it, keeps the connection alive with PING/PONG and reconnects with a jittered
/// backoff when it drops, re-subscribing everything.
///
/// Everything runs on one event loop (`eventLoop`); the methods marked "on the loop" must be called
/// there. Publishing is the caller's flow control: `isWritable` turns false above the channel's write
/// watermark and `onWritable` says when it turns true again. Messages of a subscription are delivered
/// on the loop, in order.
public final class NATSConnection: @unchecked Sendable {
    /// How to connect.
    public struct Options: Sendable {
        public var servers: [NATSServerAddress]
        /// The client name the server shows (`CONNECT name`).
        public var name: String
        /// TLS settings (trust roots, client certificate); nil: the system trust store, used only when a
        /// URL says `tls://` or the server requires TLS.
        public var tls: TLSConfiguration?
        /// The name the server's certificate must carry; default: the first configured server's host
        /// (the cluster announces its other servers by IP address).
        public var tlsServerName: String?
        public var pingInterval: TimeAmount = .seconds(5)
        /// Unanswered PINGs after which the connection is considered dead and reopened.
        public var maxPingsOutstanding = 2
        public var reconnectDelayMin: TimeAmount = .milliseconds(50)
        public var reconnectDelayMax: TimeAmount = .seconds(2)
        /// TCP connect plus the INFO/CONNECT/PONG handshake (TLS included).
        public var connectTimeout: TimeAmount = .seconds(3)
        /// Bytes queued in the channel above which `isWritable` is false.
        public var writeHighWatermark = 8 << 20

        public init(servers: [NATSServerAddress], name: String = "horgosd", tls: TLSConfiguration? = nil) {
            self.servers = servers
            self.name = name
            self.tls = tls
        }
    }

    /// The connection's state.
    public enum State: String, Sendable, Hashable {
        case disconnected, connecting, connected, closed
    }

    /// Counters and facts for `/status` and metrics (a snapshot, readable from any thread).
    public struct Snapshot: Sendable, Hashable {
        public var state: State = .disconnected
        public var server: String?
        public var serverVersion: String?
        public var connects = 0
        public var disconnects = 0
        public var lastError: String?
        /// Why the last connection ended (kept after a reconnect).
        public var lastDisconnectReason: String?
        public var maxPayload = 1 << 20

        public init() {}
    }

    private struct Subscription {
        let subject: String
        let handler: (NATSMessage) -> Void
    }

    private enum Handshake {
        case none
        case awaitingInfo(NATSServerAddress)
        case awaitingPong(NATSServerAddress)
    }

    public let eventLoop: any EventLoop
    public let options: Options
    /// `_INBOX.<random>`: reply subjects of this connection start with it.
    public let inboxPrefix: String
    private let logger: Logger
    private let sslContext: NIOSSLContext?
    private let defaultSSLContext: NIOSSLContext?
    private var state: State = .disconnected
    private var handshake: Handshake = .none
    private var channel: (any Channel)?
    private var pool: [NATSServerAddress]
    private var poolIndex = 0
    private var failedAttempts = 0
    private var subscriptions: [UInt64: Subscription] = [:]
    private var nextSID: UInt64 = 1
    private var pingsOutstanding = 0
    /// One entry per PING sent on this connection, in order; non-nil for `roundTrip()` callers.
    private var pongWaiters: [EventLoopPromise<Void>?] = []
    private var stateObservers: [(State) -> Void] = []
    private var writableObservers: [() -> Void] = []
    private var requests: [UInt64: (promise: EventLoopPromise<NATSMessage>, timeout: Scheduled<Void>)] = [:]
    private var nextRequest: UInt64 = 1
    private var pingTask: RepeatedTask?
    private var reconnectTask: Scheduled<Void>?
    private var handshakeTimeout: Scheduled<Void>?
    private let stats = Mutex(Snapshot())
    /// The server's INFO of the current connection.
    public private(set) var serverInfo: NATSServerInfo?

    /// A connection (not yet started) with its own random inbox.
    public init(options: Options, eventLoop: any EventLoop, logger: Logger) throws {
        precondition(!options.servers.isEmpty, "at least one NATS server")
        self.options = options
        self.eventLoop = eventLoop
        self.logger = logger
        self.pool = options.servers
        inboxPrefix = "_INBOX." + Self.randomToken()
        sslContext = try options.tls.map { try NIOSSLContext(configuration: $0) }
        defaultSSLContext =
            options.tls == nil && options.servers.contains(where: \.tls)
            ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        subscriptions[0] = Subscription(subject: inboxPrefix + ".*") { [unowned self] message in
            self.routeReply(message)
        }
    }

    static func randomToken() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<22).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
    }

    // MARK: Observing

    /// A snapshot of the connection's facts (any thread).
    public var snapshot: Snapshot { stats.withLock { $0 } }

    /// Whether the connection is up and the channel has room (on the loop).
    public var isWritable: Bool { state == .connected && (channel?.isWritable ?? false) }

    /// Whether the handshake finished and the connection is up (on the loop).
    public var isConnected: Bool { state == .connected }

    /// Calls `observer` on the loop at every state change (on the loop).
    public func onStateChange(_ observer: @escaping (State) -> Void) {
        eventLoop.preconditionInEventLoop()
        stateObservers.append(observer)
    }

    /// Calls `observer` on the loop whenever the channel becomes writable again (on the loop).
    public func onWritable(_ observer: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        writableObservers.append(observer)
    }

    private func setState(_ new: State) {
        guard new != state else { return }
        state = new
        stats.withLock { $0.state = new }
        for observer in stateObservers { observer(new) }
    }

    // MARK: Lifecycle

    /// Starts connecting (any thread). Reconnects by itself until `close()`.
    public func start() {
        eventLoop.execute { [self] in
            guard state == .disconnected, channel == nil else { return }
            connectNext()
        }
    }

    /// Closes for good (any thread); outstanding requests fail with `.closed`.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            setState(.closed)
            reconnectTask?.cancel()
            pingTask?.cancel()
            handshakeTimeout?.cancel()
            failOutstanding(.closed)
            guard let channel else { return eventLoop.makeSucceededVoidFuture() }
            self.channel = nil
            return channel.close().recover { _ in }
        }
    }

    private func connectNext() {
        guard state != .closed else { return }
        setState(.connecting)
        let server = pool[poolIndex % pool.count]
        poolIndex += 1
        let decoderLimit = 64 << 20
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(options.connectTimeout)
            .channelOption(
                .writeBufferWaterMark,
                value: .init(low: options.writeHighWatermark / 2, high: options.writeHighWatermark)
            )
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(NATSFrameDecoder(maxControlLine: 1 << 20, maxPayload: decoderLimit)))
                    try channel.pipeline.syncOperations.addHandler(NATSChannelHandler(connection: self))
                }
            }
        bootstrap.connect(host: server.host, port: server.port).hop(to: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard state != .closed else {
                    channel.close(promise: nil)
                    return
                }
                self.channel = channel
                handshake = .awaitingInfo(server)
                handshakeTimeout = eventLoop.scheduleTask(in: options.connectTimeout) { [weak self, weak channel] in
                    guard let self, let channel, self.channel === channel, self.state != .connected else { return }
                    self.recordError("handshake with \(server) timed out")
                    channel.close(promise: nil)
                }
            case .failure(let error):
                recordError("connect to \(server): \(error)")
                scheduleReconnect()
            }
        }
    }

    private func scheduleReconnect() {
        guard state != .closed else { return }
        setState(.disconnected)
        failedAttempts += 1
        // Once around the pool quickly, then back off (doubling, jittered) up to the maximum.
        let exponent = max(0, min(10, failedAttempts - pool.count))
        let base = options.reconnectDelayMin.nanoseconds << exponent
        let capped = min(base, options.reconnectDelayMax.nanoseconds)
        let delay = TimeAmount.nanoseconds(capped / 2 + Int64.random(in: 0...max(1, capped / 2)))
        reconnectTask = eventLoop.scheduleTask(in: delay) { [weak self] in self?.connectNext() }
    }

    private func recordError(_ text: String) {
        stats.withLock { $0.lastError = text }
        logger.debug("nats: \(text)")
    }

    // MARK: From the channel

    fileprivate func received(_ operation: NATSServerOperation, on channel: any Channel) {
        guard channel === self.channel else { return }
        switch operation {
        case .message(let message):
            if let subscription = subscriptions[message.sid] { subscription.handler(message) }
        case .ping:
            channel.writeAndFlush(ByteBuffer(staticString: "PONG\r\n"), promise: nil)
        case .pong:
            pingsOutstanding = 0
            if !pongWaiters.isEmpty, let waiter = pongWaiters.removeFirst() { waiter.succeed() }
            if case .awaitingPong(let server) = handshake { handshakeCompleted(server) }
        case .info(let info):
            serverInfo = info
            merge(discovered: info.connectURLs)
            stats.withLock {
                $0.serverVersion = info.version
                $0.maxPayload = info.maxPayload
            }
            if case .awaitingInfo(let server) = handshake { sendConnect(server: server, info: info, channel: channel) }
        case .ok:
            break
        case .error(let text):
            recordError("server error: \(text)")
            logger.warning("NATS server error", metadata: ["error": "\(text)"])
            if case .none = handshake {
                // Permission errors leave the connection open; the server closes it on fatal ones.
            } else {
                channel.close(promise: nil)
            }
        }
    }

    private func sendConnect(server: NATSServerAddress, info: NATSServerInfo, channel: any Channel) {
        let wantTLS = server.tls || info.tlsRequired
        if wantTLS {
            guard
                let context = sslContext ?? defaultSSLContext
                    ?? (try? NIOSSLContext(configuration: .makeClientConfiguration()))
            else {
                recordError("cannot make a TLS context")
                channel.close(promise: nil)
                return
            }
            let name = options.tlsServerName ?? options.servers.first?.host ?? server.host
            let hostname = Self.isIPAddress(name) ? nil : name
            do {
                let handler = try NIOSSLClientHandler(context: context, serverHostname: hostname)
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            } catch {
                recordError("TLS to \(server): \(error)")
                channel.close(promise: nil)
                return
            }
        }
        var fields: [String: Any] = [
            "verbose": false, "pedantic": false, "tls_required": wantTLS, "name": options.name, "lang": "swift",
            "version": "1.0", "protocol": 1, "headers": true, "no_responders": true, "echo": true,
        ]
        if let user = server.user ?? options.servers.first(where: { $0.user != nil })?.user {
            fields["user"] = user
            fields["pass"] = server.password ?? options.servers.first(where: { $0.user != nil })?.password ?? ""
        } else if let token = server.token ?? options.servers.first(where: { $0.token != nil })?.token {
            fields["auth_token"] = token
        }
        let json = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        var buffer = channel.allocator.buffer(capacity: json.count + 16)
        buffer.writeStaticString("CONNECT ")
        buffer.writeBytes(json)
        buffer.writeStaticString("\r\nPING\r\n")
        pongWaiters.append(nil)
        handshake = .awaitingPong(server)
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func handshakeCompleted(_ server: NATSServerAddress) {
        handshake = .none
        handshakeTimeout?.cancel()
        failedAttempts = 0
        stats.withLock {
            $0.server = server.description
            $0.connects += 1
            $0.lastError = nil
        }
        logger.info("connected to NATS", metadata: ["server": "\(server)", "version": "\(serverInfo?.version ?? "?")"])
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        for (sid, subscription) in subscriptions.sorted(by: { $0.key < $1.key }) {
            NATSClientProtocol.writeSubscribe(to: &buffer, subject: subscription.subject, sid: sid)
        }
        channel?.writeAndFlush(buffer, promise: nil)
        pingTask = eventLoop.scheduleRepeatedTask(initialDelay: options.pingInterval, delay: options.pingInterval) {
            [weak self] _ in
            self?.keepAlive()
        }
        setState(.connected)
        for observer in writableObservers { observer() }
    }

    private func keepAlive() {
        guard state == .connected, let channel else { return }
        if pingsOutstanding >= options.maxPingsOutstanding {
            recordError("no PONG to \(pingsOutstanding) PINGs: the server is unreachable")
            channel.close(promise: nil)
            return
        }
        pingsOutstanding += 1
        pongWaiters.append(nil)
        write(ByteBuffer(staticString: "PING\r\n"), flush: true)
    }

    fileprivate func channelClosed(_ channel: any Channel) {
        guard channel === self.channel else { return }
        self.channel = nil
        handshake = .none
        pingTask?.cancel()
        pingTask = nil
        handshakeTimeout?.cancel()
        pingsOutstanding = 0
        failOutstanding(.disconnected)
        stats.withLock {
            $0.disconnects += 1
            $0.server = nil
            $0.lastDisconnectReason = $0.lastError ?? "closed by the server"
        }
        if state == .connected {
            logger.warning(
                "NATS connection lost; reconnecting", metadata: ["error": "\(snapshot.lastError ?? "closed")"])
        }
        scheduleReconnect()
    }

    fileprivate func writabilityChanged(_ channel: any Channel) {
        guard channel === self.channel, channel.isWritable, state == .connected else { return }
        for observer in writableObservers { observer() }
    }

    fileprivate func channelError(_ error: any Error, on channel: any Channel) {
        guard channel === self.channel else { return }
        recordError("\(error)")
        channel.close(promise: nil)
    }

    private func failOutstanding(_ error: NATSConnectionError) {
        let waiters = pongWaiters
        pongWaiters.removeAll()
        for waiter in waiters { waiter?.fail(error) }
        let pending = requests
        requests.removeAll()
        for (_, request) in pending {
            request.timeout.cancel()
            request.promise.fail(error)
        }
    }

    private func merge(discovered urls: [String]) {
        for url in urls {
            guard var address = NATSServerAddress(parsing: url) else { continue }
            address.discovered = true
            address.tls = options.servers.first?.tls ?? false
            if !pool.contains(where: { $0.host == address.host && $0.port == address.port }) { pool.append(address) }
        }
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    // MARK: Writing (on the loop)

    /// Writes raw protocol bytes; false when not connected (nothing written).
    @discardableResult
    public func write(_ buffer: ByteBuffer, flush: Bool) -> Bool {
        guard let channel, state == .connected else { return false }
        if flush { channel.writeAndFlush(buffer, promise: nil) } else { channel.write(buffer, promise: nil) }
        return true
    }

    /// Flushes what `write(_:flush: false)` queued.
    public func flush() {
        channel?.flush()
    }

    /// `PUB`/`HPUB` (on the loop); false when not connected.
    @discardableResult
    public func publish(
        subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: UnsafeRawBufferPointer,
        flush: Bool = true
    ) -> Bool {
        guard state == .connected, let channel else { return false }
        var headerBuffer: ByteBuffer?
        if let headers {
            var b = channel.allocator.buffer(capacity: 64)
            headers.write(to: &b)
            headerBuffer = b
        }
        var buffer = channel.allocator.buffer(capacity: subject.utf8.count + payload.count + 64)
        NATSClientProtocol.writePublish(
            to: &buffer, subject: subject, replyTo: replyTo, headers: headerBuffer, payload: payload)
        return write(buffer, flush: flush)
    }

    /// Subscribes `handler` to `subject` (on the loop); kept across reconnects. Returns the sid.
    @discardableResult
    public func subscribe(_ subject: String, handler: @escaping (NATSMessage) -> Void) -> UInt64 {
        eventLoop.preconditionInEventLoop()
        let sid = nextSID
        nextSID += 1
        subscriptions[sid] = Subscription(subject: subject, handler: handler)
        if state == .connected {
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            NATSClientProtocol.writeSubscribe(to: &buffer, subject: subject, sid: sid)
            write(buffer, flush: true)
        }
        return sid
    }

    /// Ends a subscription (on the loop).
    public func unsubscribe(_ sid: UInt64) {
        eventLoop.preconditionInEventLoop()
        guard subscriptions.removeValue(forKey: sid) != nil, state == .connected else { return }
        var buffer = ByteBufferAllocator().buffer(capacity: 32)
        NATSClientProtocol.writeUnsubscribe(to: &buffer, sid: sid)
        write(buffer, flush: true)
    }

    /// Sends PING and succeeds on its PONG: everything written before was processed by the server.
    public func roundTrip() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            guard state == .connected else { return eventLoop.makeFailedFuture(NATSConnectionError.notConnected) }
            let promise = eventLoop.makePromise(of: Void.self)
            pongWaiters.append(promise)
            write(ByteBuffer(staticString: "PING\r\n"), flush: true)
            return promise.futureResult
        }
    }

    /// Publishes `payload` to `subject` with a reply subject of this connection and returns the first
    /// reply (any thread). Fails with `.notConnected` at once when the connection is down.
    public func request(
        _ subject: String, payload: [UInt8], headers: NATSHeaders? = nil, timeout: TimeAmount
    ) -> EventLoopFuture<NATSMessage> {
        eventLoop.flatSubmit { [self] in
            guard state == .connected else { return eventLoop.makeFailedFuture(NATSConnectionError.notConnected) }
            let id = nextRequest
            nextRequest += 1
            let promise = eventLoop.makePromise(of: NATSMessage.self)
            let timer = eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self, let request = self.requests.removeValue(forKey: id) else { return }
                request.promise.fail(NATSConnectionError.timeout)
            }
            requests[id] = (promise, timer)
            payload.withUnsafeBytes { bytes in
                _ = publish(subject: subject, replyTo: "\(inboxPrefix).\(id)", headers: headers, payload: bytes)
            }
            return promise.futureResult
        }
    }

    private func routeReply(_ message: NATSMessage) {
        guard let dot = message.subject.lastIndex(of: "."),
            let id = UInt64(message.subject[message.subject.index(after: dot)...]),
            let request = requests.removeValue(forKey: id)
        else { return }
        request.timeout.cancel()
        request.promise.succeed(message)
    }
}

/// The connection's channel handler: hands decoded operations, closes and writability to it.
final class NATSChannelHandler: ChannelInboundHandler {
    typealias InboundIn = NATSServerOperation

    let connection: NATSConnection

    init(connection: NATSConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data), on: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.channelClosed(context.channel)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.writabilityChanged(context.channel)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.channelError(error, on: context.channel)
    }
}
