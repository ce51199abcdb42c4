import HorgosStore
import HorgosWire
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// What every connection of one listener shares: the protocol, admission, regions, budget, metrics.
public struct PipelineEnvironment<P: IngestProtocol>: Sendable {
    /// The protocol value new connections get (a reload may replace its limits).
    public var wireProtocol: P
    /// Reads and checks the verified certificate: identity, deny list, served market.
    public var admit: @Sendable (NIOSSLCertificate?) -> Result<PeerIdentity, SessionRefusal>
    /// The peer of a plain-TCP connection (a listener without TLS); nil with TLS.
    public var plainPeer: P.Session.Peer?
    /// Each served region's handle (flow control, journal sink, this protocol's counters), by ISO code.
    public var regions: [String: RegionHandle]
    /// True when the deny list revokes a VIN (checked on every VIN a frame forwards).
    public var isVINRevoked: @Sendable (VIN) -> Bool
    /// `limits.max_buffered_bytes`: queued frames count the receive buffers they keep alive.
    public var budget: BufferedBytesBudget?
    /// The pipeline's metrics, labelled with the protocol.
    public var metrics: PipelineMetrics
    /// Told of sessions and refusals besides the metrics (tests); nil in the daemon.
    public var observer: (any ConnectionObserver)?
    /// Where commits come back to each event loop.
    public var inboxes: CommitInboxes
    /// Frames in flight to storage per connection before reading stops.
    public var maxInFlight: Int
    /// Milliseconds since the epoch (injected so tests control the clock).
    public var now: @Sendable () -> Int64
    public var logger: Logger

    /// An environment from its parts.
    public init(
        wireProtocol: P, admit: @escaping @Sendable (NIOSSLCertificate?) -> Result<PeerIdentity, SessionRefusal>,
        plainPeer: P.Session.Peer? = nil, regions: [String: RegionHandle],
        isVINRevoked: @escaping @Sendable (VIN) -> Bool = { _ in false }, budget: BufferedBytesBudget? = nil,
        metrics: PipelineMetrics, inboxes: CommitInboxes = CommitInboxes(), maxInFlight: Int = 1024,
        now: @escaping @Sendable () -> Int64, logger: Logger
    ) {
        self.wireProtocol = wireProtocol
        self.admit = admit
        self.plainPeer = plainPeer
        self.regions = regions
        self.isVINRevoked = isVINRevoked
        self.budget = budget
        self.metrics = metrics
        self.observer = nil
        self.inboxes = inboxes
        self.maxInFlight = maxInFlight
        self.now = now
        self.logger = logger
    }
}

/// Hears of sessions and refusals on every listener (tests watch connections through it; the daemon's
/// figures are ``PipelineMetrics``).
public protocol ConnectionObserver: Sendable {
    /// A peer passed admission (`identity` nil: a plain-TCP peer).
    func sessionStarted(protocolName: String, role: String, identity: PeerIdentity?)
    /// A session's connection closed.
    func sessionEnded(protocolName: String)
    /// A connection was refused after its TLS handshake (`code`: the protocol's ERROR code name).
    func refused(protocolName: String, code: String)
    /// A TLS handshake failed.
    func handshakeFailed(protocolName: String)
}

extension ConnectionObserver {
    public func sessionStarted(protocolName: String, role: String, identity: PeerIdentity?) {}
    public func sessionEnded(protocolName: String) {}
    public func refused(protocolName: String, code: String) {}
    public func handshakeFailed(protocolName: String) {}
}

/// A connection the revocation sweep can end (every protocol's handler).
protocol RevocableConnection: AnyObject {
    /// Ends the session when `isRevoked` says its certificate is revoked now; returns whether it did.
    func endIfRevoked(_ isRevoked: (PeerIdentity) -> Bool) -> Bool
}

/// Performs one connection's ``ConnectionStateMachine`` on its channel: the one NIO handler of every
/// protocol.
///
/// Sits behind the protocol's decoder. It admits the peer when TLS completes (or at once on a plain-TCP
/// listener), feeds decoded frames, commits and events to the machine and does what it returns: hands
/// frames to the region's journal sink (counting the receive buffer against the byte budget until the
/// commit), holds reads, writes the queued answers in one buffer (reused), closes. The per-frame path takes
/// no lock and writes no log line: region accounting and metrics are atomics resolved once per session.
public final class ConnectionHandler<P: IngestProtocol>: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = P.Session.Inbound
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// The handler's name in the channel pipeline (the revocation sweep finds it by name).
    public static var name: String { "horgos.connection" }

    private let environment: PipelineEnvironment<P>
    /// What the per-frame path uses, taken out of the environment once.
    private let now: @Sendable () -> Int64
    private let budget: BufferedBytesBudget?
    private var machine: ConnectionStateMachine<P.Session>
    private var region: RegionHandle?
    private var identity: PeerIdentity?
    private var context: ChannelHandlerContext?
    private var inbox: CommitInbox?
    private var receiver: NIOLoopBound<any CommitReceiver>?
    private var answerBuffer: ByteBuffer?
    private var flushRegistered = false
    private var tlsCompleted = false
    /// The client's address from a PROXY header (behind a load balancer); nil: the TCP peer's.
    private let clientAddress: String?
    /// The connection's partial-frame budget handler, told how many bytes each decoded frame consumed.
    private let partial: PartialFrameBudgetHandler?

    /// A handler for one connection.
    public init(
        environment: PipelineEnvironment<P>, clientAddress: String? = nil, partial: PartialFrameBudgetHandler? = nil
    ) {
        self.environment = environment
        self.now = environment.now
        self.budget = environment.budget
        self.machine = ConnectionStateMachine(
            maxInFlight: environment.maxInFlight, isVINRevoked: environment.isVINRevoked)
        self.clientAddress = clientAddress
        self.partial = partial
    }

    /// The connection's state (tests).
    public var state: ConnectionStateMachine<P.Session>.State { machine.state }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        inbox = environment.inboxes.inbox(for: context.eventLoop)
        receiver = NIOLoopBound(self, eventLoop: context.eventLoop)
        if let peer = environment.plainPeer, context.channel.isActive { start(peer, identity: nil, context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        if let peer = environment.plainPeer, machine.state == .awaitingPeer {
            start(peer, identity: nil, context: context)
        }
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        region?.flow.cancelWait(ObjectIdentifier(self))
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let hadSession = machine.isAdmitted && machine.state != .closed
        machine.closed()
        region?.flow.cancelWait(ObjectIdentifier(self))
        if hadSession {
            environment.metrics.sessionEnded()
            environment.observer?.sessionEnded(protocolName: P.name)
        }
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            perform(machine.quiesce(), context: context)
            return
        }
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            tlsCompleted = true
            admit(context: context)
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            environment.logger.debug("closing idle connection", metadata: ["protocol": "\(P.name)"])
            perform(machine.idleTimeout(), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Admission

    private func admit(context: ChannelHandlerContext) {
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        switch environment.admit(certificate).flatMap({ identity in
            environment.wireProtocol.peer(for: identity).map { (identity, $0) }
        }) {
        case .failure(let refusal): refuse(refusal, context: context)
        case .success(let (identity, peer)): start(peer, identity: identity, context: context)
        }
    }

    private func start(_ peer: P.Session.Peer, identity: PeerIdentity?, context: ChannelHandlerContext) {
        let session = environment.wireProtocol.makeSession(
            peer: peer,
            context: SessionContext(
                connection: ConnectionReference(context.channel), isVINRevoked: environment.isVINRevoked))
        guard let region = environment.regions[session.market] else {
            refuse(
                SessionRefusal(code: .unknownMarket, reason: "market \(session.market) is not a region of this server"),
                context: context)
            return
        }
        self.region = region
        self.identity = identity
        machine.peerAdmitted(session)
        environment.metrics.sessionStarted(role: session.role)
        environment.observer?.sessionStarted(protocolName: P.name, role: session.role, identity: identity)
        environment.logger.info(
            "peer authenticated",
            metadata: [
                "protocol": "\(P.name)", "role": "\(session.role)", "peer": "\(identity?.description ?? "\(peer)")",
                "market": "\(session.market)",
            ])
    }

    private func refuse(_ refusal: SessionRefusal, context: ChannelHandlerContext) {
        environment.metrics.refused(refusal.code.name)
        environment.observer?.refused(protocolName: P.name, code: refusal.code.name)
        environment.logger.notice(
            "connection refused",
            metadata: [
                "protocol": "\(P.name)", "code": "\(refusal.code.name)", "reason": "\(refusal.reason)",
                "remote": "\(clientAddress ?? context.channel.remoteAddress?.ipAddress ?? "?")",
            ])
        machine.peerRefused()
        var buffer = context.channel.allocator.buffer(capacity: 64)
        environment.wireProtocol.encodeRefusal(refusal, into: &buffer)
        guard buffer.readableBytes > 0 else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Inbound

    // The entry points of the per-frame path, specialised for the two protocols Horgos ships: NIO calls a
    // handler through its protocol witness, which for a generic class is the generic implementation; these
    // attributes make it jump to a version compiled for the concrete protocol (callgrind: 2.4x fewer
    // instructions per frame than the generic code, BENCHMARKS.md). Another protocol works without them.
    @_specialize(exported: false, where P == NativeProtocol)
    @_specialize(exported: false, where P == GBT32960Protocol)
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let inbound = unwrapInboundIn(data)
        partial?.framed(P.consumedBytes(inbound))
        let action = machine.frameDecoded(inbound, nowMs: now())
        if let vin = machine.takeRefusedVIN() {
            environment.metrics.refused(ErrorCode.certificateRevoked.name)
            environment.logger.debug(
                "frame for a revoked VIN refused", metadata: ["protocol": "\(P.name)", "vin": "\(vin)"])
        }
        perform(action, context: context)
    }

    @_specialize(exported: false, where P == NativeProtocol)
    @_specialize(exported: false, where P == GBT32960Protocol)
    public func channelReadComplete(context: ChannelHandlerContext) {
        perform(machine.readComplete(), context: context)
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !tlsCompleted && error is NIOSSLError {
            environment.metrics.handshakeFailed()
            environment.observer?.handshakeFailed(protocolName: P.name)
            environment.logger.notice(
                "connection refused",
                metadata: [
                    "protocol": "\(P.name)", "code": "TLS_HANDSHAKE_FAILED", "reason": "\(error)",
                    "remote": "\(clientAddress ?? context.channel.remoteAddress?.description ?? "?")",
                ])
            context.close(promise: nil)
        } else if machine.isAdmitted {
            perform(machine.decodingFailed(error), context: context)
        } else {
            environment.logger.debug("connection error", metadata: ["protocol": "\(P.name)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Outbound

    @_specialize(exported: false, where P == NativeProtocol)
    @_specialize(exported: false, where P == GBT32960Protocol)
    public func read(context: ChannelHandlerContext) {
        perform(machine.readRequested(), context: context)
    }

    // MARK: Actions

    private func perform(_ action: ConnectionAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            return
        case .read:
            context.read()
        case .store(let id, let request):
            store(id, request, context: context)
        case .write(let close, let handshakeComplete):
            write(close: close, handshakeComplete: handshakeComplete, context: context)
        case .close:
            context.close(promise: nil)
        }
    }

    private func store(_ id: UInt32, _ request: FrameToStore, context: ChannelHandlerContext) {
        guard let region, let inbox, let receiver else { return }
        let bytes = request.queuedBytes
        let pinned = request.payload.storageCapacity
        let budget = self.budget
        budget?.add(pinned)
        let counters = region.counters
        counters.received(records: request.records)
        let flow = region.flow
        let receivedNs = NIODeadline.now().uptimeNanoseconds
        do {
            try region.sink.submit(
                IngestSubmission(kind: request.kind, payload: request.payload) { outcome in
                    flow.remove(bytes)
                    budget?.remove(pinned)
                    counters.committed(outcome)
                    inbox.deliver(.init(receiver: receiver, id: id, outcome: outcome, receivedNs: receivedNs))
                })
        } catch {
            budget?.remove(pinned)
            environment.logger.warning(
                "storage refused a frame",
                metadata: ["protocol": "\(P.name)", "region": "\(region.code)", "reason": "\(error.reason)"])
            perform(machine.storageRefused(id, reason: error.reason), context: context)
            return
        }
        if flow.add(bytes) && !machine.isRegionFull {
            let resume = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let waiting = flow.waitForRoom(ObjectIdentifier(self)) { loop.execute { resume.value.regionHasRoom() } }
            machine.submitted(regionAboveHighWatermark: waiting)
        }
    }

    private func regionHasRoom() {
        guard let context else { return }
        perform(machine.regionHasRoom(), context: context)
    }

    private func write(close: Bool, handshakeComplete: Bool, context: ChannelHandlerContext) {
        var buffer = answerBuffer ?? context.channel.allocator.buffer(capacity: 64)
        answerBuffer = nil
        buffer.clear()
        machine.encodeAnswers(nowMs: now(), into: &buffer)
        if buffer.readableBytes > 0 {
            if close {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
                answerBuffer = buffer  // uniquely referenced again once the channel has written it
            }
        } else if close {
            context.close(promise: nil)
        }
        // After the answer that completes it (WELCOME, a login's): the timer in front stops here.
        if handshakeComplete { context.triggerUserOutboundEvent(SessionEvent.helloAccepted, promise: nil) }
    }
}

extension ConnectionHandler: CommitReceiver {
    @_specialize(exported: false, where P == NativeProtocol)
    @_specialize(exported: false, where P == GBT32960Protocol)
    func committed(_ id: UInt32, outcome: CommitOutcome, receivedNs: UInt64) {
        if let region {
            let now = NIODeadline.now().uptimeNanoseconds
            region.counters.acknowledged(latencyNanoseconds: now > receivedNs ? now - receivedNs : 0)
        }
        guard let context else { return }
        perform(machine.committed(id, outcome: outcome), context: context)
        guard machine.needsFlush, !flushRegistered, let inbox else { return }
        flushRegistered = true
        if !inbox.flushAfterDelivery(self) { deliveryEnded() }
    }

    @_specialize(exported: false, where P == NativeProtocol)
    @_specialize(exported: false, where P == GBT32960Protocol)
    func deliveryEnded() {
        flushRegistered = false
        guard let context else { return }
        perform(machine.flush(), context: context)
    }
}

extension ConnectionHandler: RevocableConnection {
    func endIfRevoked(_ isRevoked: (PeerIdentity) -> Bool) -> Bool {
        guard let context, let identity, machine.state == .open || machine.state == .draining,
            isRevoked(identity)
        else { return false }
        environment.metrics.refused(ErrorCode.certificateRevoked.name)
        environment.logger.notice(
            "session ended: certificate revoked by a reload",
            metadata: ["protocol": "\(P.name)", "peer": "\(identity)"])
        perform(machine.certificateRevoked(), context: context)
        return true
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}
