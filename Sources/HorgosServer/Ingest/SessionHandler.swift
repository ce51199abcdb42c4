import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Why a connection is refused after its TLS handshake (the ERROR code and the logged reason).
public struct SessionRefusal: Error, Sendable, Hashable {
    public var code: ErrorCode
    public var reason: String

    public init(code: ErrorCode, reason: String) {
        self.code = code
        self.reason = reason
    }
}

/// What a session handler needs from the server around it.
public struct SessionEnvironment: Sendable {
    /// Turns the verified peer certificate into a peer (role, VIN, market) or a refusal.
    public var authorize: @Sendable (NIOSSLCertificate?) -> Result<SessionPeer, SessionRefusal>
    /// Flow control of each configured region, by ISO code.
    public var regions: [String: RegionFlowControl]
    public var sink: any IngestSink
    public var limits: SessionLimits
    /// Milliseconds since the epoch (injected so tests control the clock).
    public var now: @Sendable () -> Int64
    public var observer: any SessionObserver
    public var logger: Logger
    /// Where writer completions wait for their event loop (one batch per loop, see `CommitInbox`).
    public var commitInboxes = CommitInboxes()
    /// True when a VIN is revoked (`vin:` in the deny list): a gateway's frames for it are not stored
    /// and are acknowledged as rejected records.
    public var isVINRevoked: @Sendable (VIN) -> Bool = { _ in false }
    /// `limits.max_buffered_bytes`: queued frames count the whole receive buffer they keep alive.
    public var bufferBudget: BufferedBytesBudget?

    public init(
        authorize: @escaping @Sendable (NIOSSLCertificate?) -> Result<SessionPeer, SessionRefusal>,
        regions: [String: RegionFlowControl], sink: any IngestSink, limits: SessionLimits,
        now: @escaping @Sendable () -> Int64, observer: any SessionObserver, logger: Logger
    ) {
        self.authorize = authorize
        self.regions = regions
        self.sink = sink
        self.limits = limits
        self.now = now
        self.observer = observer
        self.logger = logger
    }
}

/// Hooks for metrics: what happened on sessions (implemented by the daemon's metrics).
public protocol SessionObserver: Sendable {
    func sessionStarted(_ peer: SessionPeer)
    func sessionEnded(_ peer: SessionPeer?)
    func refused(_ refusal: SessionRefusal)
    func frameReceived(_ type: FrameType, region: String?, records: Int)
    func frameCommitted(region: String, outcome: CommitOutcome)
    func errorSent(_ code: ErrorCode)
    func ackSent()
    /// A data frame's ACK is about to be sent: `latencyNanoseconds` from the frame's arrival (decoded
    /// on the event loop) to its commit being back on the loop, the server's share of the ACK latency.
    func frameAcknowledged(region: String, latencyNanoseconds: UInt64)
    /// The TLS handshake failed (no client certificate, another CA, expired, old protocol version...):
    /// the connection is closed without a session. `reason` is the TLS library's error.
    func handshakeFailed(reason: String)
    /// The client's stream ended inside a frame: the connection closed without an ERROR frame
    /// (nobody is left to read one; PROTOCOL.md 2, check 1).
    func streamEndedInsideFrame()
}

extension SessionObserver {
    /// Default: ignore handshake failures (observers written before the hook existed).
    public func handshakeFailed(reason: String) {}
    /// Default: no ACK latency (observers written before the hook existed).
    public func frameAcknowledged(region: String, latencyNanoseconds: UInt64) {}
    /// Default: ignore truncated streams (observers written before the hook existed).
    public func streamEndedInsideFrame() {}
}

/// Drives one connection's `SessionStateMachine` and performs its actions on the channel.
///
/// Sits after the TLS handler, the idle-state handler and the frame decoder. It is thin on
/// purpose: the protocol rules are in the state machine; this type reads identity after the
/// handshake, hands data frames to the region's writer, turns commits into cumulative ACKs
/// (coalesced: one ACK write per burst of completions, see `CommitInbox`), stops reading while the
/// region's queue is above its high watermark, and writes WELCOME, PONG, ERROR and BYE.
///
/// The per-frame path takes no lock and writes no log line: the region's byte accounting is atomic
/// (`RegionFlowControl`), the metrics are atomic counters created once, and the ACK is encoded into a
/// buffer reused from one ACK to the next.
public final class SessionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = InboundFrame
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let environment: SessionEnvironment
    private var machine: SessionStateMachine?
    private var flow: RegionFlowControl?
    private var context: ChannelHandlerContext?
    private var serverSequence: UInt32 = 0
    private var pendingAck: Ack?
    private var ackFlushScheduled = false
    private var readBlocked = false
    private var readPending = false
    private var draining = false
    private var queuedBytes = 0
    private var handshakeCompleted = false
    private var inbox: CommitInbox?
    /// Reused encoding space for server frames (no allocation per ACK).
    private var encoded: [UInt8] = []
    /// The last ACK's buffer, reused once the channel has written it (then it is uniquely referenced).
    private var ackBuffer: ByteBuffer?

    public init(environment: SessionEnvironment) {
        self.environment = environment
    }

    // MARK: Inbound

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.inbox = environment.commitInboxes.inbox(for: context.eventLoop)
        encoded.reserveCapacity(64)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        flow?.cancelWait(ObjectIdentifier(self))
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        machine?.closed()
        flow?.cancelWait(ObjectIdentifier(self))
        environment.observer.sessionEnded(machine?.peer)
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            handshakeCompleted = true
            authorize(context: context)
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if let action = machine?.startDraining(.idleTimeout) {
                environment.logger.debug("closing idle connection")
                perform(action, context: context)
            } else {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func authorize(context: ChannelHandlerContext) {
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        switch environment.authorize(certificate) {
        case .failure(let refusal):
            refuse(refusal, context: context)
        case .success(let peer):
            guard let flow = environment.regions[peer.market] else {
                refuse(SessionRefusal(code: .unknownMarket,
                                      reason: "market \(peer.market) is not a region of this server"),
                       context: context)
                return
            }
            self.flow = flow
            self.machine = SessionStateMachine(peer: peer, limits: environment.limits)
            environment.observer.sessionStarted(peer)
        }
    }

    private func refuse(_ refusal: SessionRefusal, context: ChannelHandlerContext) {
        environment.observer.refused(refusal)
        environment.logger.notice(
            "connection refused", metadata: ["code": "\(refusal.code.name)", "reason": "\(refusal.reason)"])
        send(.sendErrorAndClose(ErrorMessage(code: refusal.code, reason: refusal.reason)), context: context)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // After ERROR or BYE nothing more is read: frames already decoded from the same read are dropped.
        guard !draining else { return }
        // Frames before the identity is known cannot happen after a TLS handshake; drop them. The state
        // machine is mutated in place (`machine!`): a local copy would copy its ACK-window arrays per frame.
        guard machine != nil else { return }
        let header = frame.header
        // Header-only session checks come before the payload's (PROTOCOL.md 6.1).
        let admitted = machine!.admit(header)
        if admitted != .none {
            perform(admitted, context: context)
            return
        }
        let limits = environment.limits
        let parsed: Result<ParsedFrame, FrameError> = frame.bytes.withUnsafeReadableBytes { raw in
            let payload = UnsafeRawBufferPointer(rebasing: raw[WireFormat.headerSize..<(header.frameLength - 4)])
            do {
                return .success(try ParsedFrame(FrameView(header: header, payload: payload).message(
                    maxRecords: limits.maxRecords)))
            } catch {
                return .failure(error as! FrameError)
            }
        }
        let action: SessionStateMachine.Action
        switch parsed {
        case .failure(let error):
            action = machine!.protocolViolation(error, sequence: header.sequence)
        case .success(let message):
            environment.observer.frameReceived(header.type, region: flow?.region, records: message.records)
            var first = machine!.received(header, vin: message.vin, nowMs: environment.now())
            if first == .none {
                switch message {
                case .hello(let hello): first = machine!.hello(hello, nowMs: environment.now())
                case .ping(let opaque): first = machine!.ping(opaque)
                case .bye: first = machine!.bye()
                default: break
                }
            }
            action = first
        }
        // After the client's BYE nothing more is read (PROTOCOL.md 4.8), even while commits are pending.
        if case .draining = machine!.state { draining = true }
        if case .store(let sequence) = action, machine!.peer.role == .gateway, case .success(let message) = parsed,
            let vin = message.vin, environment.isVINRevoked(vin)
        {
            refuseRevokedVIN(vin, sequence: sequence, records: message.records, context: context)
            return
        }
        perform(action, context: context, frame: frame, header: header)
    }

    /// A gateway sent a frame for a revoked VIN: not stored, acknowledged with its records rejected.
    private func refuseRevokedVIN(_ vin: VIN, sequence: UInt32, records: Int, context: ChannelHandlerContext) {
        guard var machine else { return }
        environment.observer.refused(SessionRefusal(code: .certificateRevoked, reason: "VIN \(vin) is revoked"))
        let action = machine.frameCommitted(sequence, rejected: UInt32(clamping: max(records, 1)))
        self.machine = machine
        perform(action, context: context)
    }

    /// Ends the session with ERROR CERTIFICATE_REVOKED when `isRevoked` says its peer is now revoked (a
    /// reload); returns whether it did. Frames not yet acknowledged are not acknowledged.
    public func endIfRevoked(_ isRevoked: (SessionPeer) -> Bool) -> Bool {
        guard let context, var machine, !draining, isRevoked(machine.peer) else { return false }
        let action = machine.serverFailure(
            .certificateRevoked, sequence: 0, reason: "the certificate was revoked while connected")
        self.machine = machine
        environment.observer.refused(SessionRefusal(code: .certificateRevoked, reason: "revoked while connected"))
        send(action, context: context)
        return true
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let framing = error as? FramingError, var machine {
            let action = machine.protocolViolation(framing.error, sequence: framing.sequence)
            self.machine = machine
            perform(action, context: context)
        } else if let framing = error as? FramingError {
            environment.logger.debug("frame error before identity", metadata: ["error": "\(framing.error.reason)"])
            context.close(promise: nil)
        } else if let frameError = error as? FrameError, var machine {
            let action = machine.protocolViolation(frameError, sequence: 0)
            self.machine = machine
            perform(action, context: context)
        } else if let frameError = error as? FrameError {
            environment.logger.debug("frame error before identity", metadata: ["error": "\(frameError.reason)"])
            context.close(promise: nil)
        } else if !handshakeCompleted && error is NIOSSLError {
            environment.observer.handshakeFailed(reason: "\(error)")
            environment.logger.notice(
                "connection refused",
                metadata: [
                    "code": "TLS_HANDSHAKE_FAILED", "reason": "\(error)",
                    "remote": "\(context.channel.remoteAddress?.description ?? "?")",
                ])
            context.close(promise: nil)
        } else {
            environment.logger.debug("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Outbound

    public func read(context: ChannelHandlerContext) {
        if readBlocked || draining {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Actions

    private func perform(
        _ action: SessionStateMachine.Action, context: ChannelHandlerContext, frame: InboundFrame? = nil,
        header: FrameHeader? = nil
    ) {
        switch action {
        case .store(let sequence):
            guard let frame, let header, let flow, let inbox else { return }
            store(frame, header: header, sequence: sequence, flow: flow, inbox: inbox, context: context)
        case .sendAck(let ack):
            coalesce(ack, context: context)
        default:
            send(action, context: context)
        }
    }

    private func store(
        _ frame: InboundFrame, header: FrameHeader, sequence: UInt32, flow: RegionFlowControl, inbox: CommitInbox,
        context: ChannelHandlerContext
    ) {
        let bytes = header.frameLength
        queuedBytes += bytes
        let budget = environment.bufferBudget
        let pinned = frame.bytes.storageCapacity
        budget?.add(pinned)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let region = flow.region
        let observer = environment.observer
        let receivedNs = NIODeadline.now().uptimeNanoseconds
        do {
            try environment.sink.submit(
                IngestSubmission(region: region, type: header.type, payload: frame.payload) { outcome in
                    flow.remove(bytes)
                    budget?.remove(pinned)
                    observer.frameCommitted(region: region, outcome: outcome)
                    inbox.deliver(
                        .init(handler: loopBound, sequence: sequence, bytes: bytes, outcome: outcome,
                              receivedNs: receivedNs))
                })
        } catch {
            queuedBytes -= bytes
            budget?.remove(pinned)
            environment.logger.warning("storage refused a frame", metadata: ["region": "\(region)",
                                                                            "reason": "\(error.reason)"])
            if var machine {
                let action = machine.serverFailure(.serverBusy, sequence: sequence, reason: error.reason)
                self.machine = machine
                send(action, context: context)
            }
            return
        }
        if flow.add(bytes) && !readBlocked {
            let resume = NIOLoopBound(self, eventLoop: eventLoop)
            if flow.waitForRoom(ObjectIdentifier(self), resume: { eventLoop.execute { resume.value.resumeReading() } }) {
                readBlocked = true
            }
        }
    }

    func committed(_ sequence: UInt32, bytes: Int, outcome: CommitOutcome, receivedNs: UInt64) {
        queuedBytes -= bytes
        if let flow {
            let now = NIODeadline.now().uptimeNanoseconds
            environment.observer.frameAcknowledged(
                region: flow.region, latencyNanoseconds: now > receivedNs ? now - receivedNs : 0)
        }
        guard machine != nil, let context else { return }
        let action = machine!.frameCommitted(sequence, rejected: UInt32(clamping: outcome.rejected))
        perform(action, context: context)
    }

    private func resumeReading() {
        guard readBlocked, let context else { return }
        readBlocked = false
        if readPending && !draining {
            readPending = false
            context.read()
        }
    }

    /// Stops reading and finishes the session once pending frames are committed (server shutdown).
    public func startDraining(_ reason: Bye.Reason) {
        guard let context else { return }
        draining = true
        guard var machine else {
            context.close(promise: nil)
            return
        }
        let action = machine.startDraining(reason)
        self.machine = machine
        perform(action, context: context)
    }

    private func coalesce(_ ack: Ack, context: ChannelHandlerContext) {
        if let previous = pendingAck {
            pendingAck = Ack(sequence: ack.sequence, rejectedRecords: previous.rejectedRecords &+ ack.rejectedRecords)
        } else {
            pendingAck = ack
        }
        guard !ackFlushScheduled else { return }
        ackFlushScheduled = true
        // Commits arrive through the inbox, which writes every pending ACK once its delivery is done.
        if inbox?.flushAfterDelivery(self) == true { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { loopBound.value.flushAck() }
    }

    /// Writes the pending cumulative ACK, if any (event loop; called once per completion burst).
    func flushAck() {
        ackFlushScheduled = false
        guard let ack = pendingAck, let context else { return }
        pendingAck = nil
        var buffer = ackBuffer ?? context.channel.allocator.buffer(capacity: 32)
        ackBuffer = nil
        buffer.clear()
        appendFrame(to: &buffer) { FrameEncoder.appendAck(ack, sequence: $1, to: &$0) }
        environment.observer.ackSent()
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        ackBuffer = buffer
    }

    private func send(_ action: SessionStateMachine.Action, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        switch action {
        case .none, .store, .sendAck:
            return
        case .sendWelcome(let welcome):
            appendFrame(to: &buffer) { FrameEncoder.appendWelcome(welcome, sequence: $1, to: &$0) }
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            context.triggerUserOutboundEvent(SessionEvent.helloAccepted, promise: nil)
        case .sendPong(let opaque):
            appendFrame(to: &buffer) { FrameEncoder.appendPing(opaque, type: .pong, sequence: $1, to: &$0) }
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .sendErrorAndClose(let message):
            draining = true
            if let code = message.knownCode {
                environment.observer.errorSent(code)
                environment.logger.info(
                    "protocol error, closing", metadata: ["code": "\(code.name)", "reason": "\(message.reason)"])
            }
            appendFrame(to: &buffer) { FrameEncoder.appendError(message, sequence: $1, to: &$0) }
            closeAfter(buffer, context: context)
        case .finish(let ack, let reason):
            draining = true
            if let ack {
                let merged = pendingAck.map {
                    Ack(sequence: ack.sequence, rejectedRecords: $0.rejectedRecords &+ ack.rejectedRecords)
                } ?? ack
                pendingAck = nil
                appendFrame(to: &buffer) { FrameEncoder.appendAck(merged, sequence: $1, to: &$0) }
                environment.observer.ackSent()
            } else if let pending = pendingAck {
                pendingAck = nil
                appendFrame(to: &buffer) { FrameEncoder.appendAck(pending, sequence: $1, to: &$0) }
            }
            appendFrame(to: &buffer) { FrameEncoder.appendBye(Bye(reason: reason), sequence: $1, to: &$0) }
            closeAfter(buffer, context: context)
        case .close:
            draining = true
            context.close(promise: nil)
        case .closeTruncated(let reason):
            draining = true
            environment.observer.streamEndedInsideFrame()
            environment.logger.info(
                "stream ended inside a frame, closing without ERROR", metadata: ["reason": "\(reason)"])
            context.close(promise: nil)
        }
    }

    private func closeAfter(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Encodes one server frame with the next server sequence number into `buffer`.
    private func appendFrame(to buffer: inout ByteBuffer, _ body: (inout [UInt8], UInt32) -> Void) {
        serverSequence &+= 1
        encoded.removeAll(keepingCapacity: true)
        body(&encoded, serverSequence)
        buffer.writeBytes(encoded)
    }
}

@available(*, unavailable)
extension SessionHandler: Sendable {}

/// The parts of a decoded frame the session needs after the receive buffer is released.
enum ParsedFrame {
    case hello(Hello)
    case data(VIN, records: Int)
    case ping(UInt64)
    case bye
    case other

    init(_ message: Message) {
        switch message {
        case .hello(let hello): self = .hello(hello)
        case .telemetry(let batch): self = .data(batch.vin, records: batch.count)
        case .event(let event): self = .data(event.vin, records: 0)
        case .ping(let opaque): self = .ping(opaque)
        case .bye: self = .bye
        default: self = .other
        }
    }

    var vin: VIN? {
        if case .data(let vin, _) = self { return vin }
        return nil
    }

    var records: Int {
        if case .data(_, let records) = self { return records }
        return 0
    }
}
