import HorgosGBT32960
import HorgosStore
import HorgosWire
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// The VINs logged in on live GB/T 32960 connections.
///
/// A vehicle certificate's VIN logging in on a new connection takes the VIN over: the older
/// connection (a unit that reconnected before the server saw the old one die) is closed. The same VIN
/// from two different platforms is a real duplicate: the second login is answered 0x03 until the
/// first connection closes or logs out.
public final class GBT32960LoginRegistry: Sendable {
    private let sessions = Mutex<[VIN: (owner: ObjectIdentifier, channel: any Channel, platform: Bool)]>([:])

    public init() {}

    /// Records `vin` for `owner`; false when another platform has it. A vehicle's older connection is
    /// closed and replaced.
    func login(_ vin: VIN, owner: ObjectIdentifier, channel: any Channel, platform: Bool) -> Bool {
        let (accepted, replaced): (Bool, (any Channel)?) = sessions.withLock { sessions in
            if let current = sessions[vin], current.owner != owner {
                if platform || current.platform { return (false, nil) }
                sessions[vin] = (owner, channel, platform)
                return (true, current.channel)
            }
            sessions[vin] = (owner, channel, platform)
            return (true, nil)
        }
        replaced?.close(promise: nil)
        return accepted
    }

    /// Forgets every VIN of `owner` (logout or close).
    func release(_ owner: ObjectIdentifier, vin: VIN? = nil) {
        sessions.withLock { sessions in
            if let vin {
                if sessions[vin]?.owner == owner { sessions[vin] = nil }
            } else {
                sessions = sessions.filter { $0.value.owner != owner }
            }
        }
    }
}

/// What a GB/T 32960 session handler needs from the server around it.
public struct GBT32960Environment: Sendable {
    /// The peer of a TLS connection from its verified certificate, or why it is refused (nil:
    /// plain TCP, see `plainPeer`).
    public var authorize: @Sendable (NIOSSLCertificate?) -> Result<GBT32960Peer, SessionRefusal>
    /// The peer of a plain-TCP connection (`gbt32960.tls: off`); nil with TLS.
    public var plainPeer: GBT32960Peer?
    public var regions: [String: RegionFlowControl]
    public var sink: any IngestSink
    public var settings: GBT32960Settings
    /// Milliseconds since the epoch (injected so tests control the clock).
    public var now: @Sendable () -> Int64
    public var metrics: GBT32960Metrics
    public var logins: GBT32960LoginRegistry
    public var logger: Logger

    public init(
        authorize: @escaping @Sendable (NIOSSLCertificate?) -> Result<GBT32960Peer, SessionRefusal>,
        plainPeer: GBT32960Peer?, regions: [String: RegionFlowControl], sink: any IngestSink,
        settings: GBT32960Settings, now: @escaping @Sendable () -> Int64, metrics: GBT32960Metrics,
        logins: GBT32960LoginRegistry = GBT32960LoginRegistry(), logger: Logger
    ) {
        self.authorize = authorize
        self.plainPeer = plainPeer
        self.regions = regions
        self.sink = sink
        self.settings = settings
        self.now = now
        self.metrics = metrics
        self.logins = logins
        self.logger = logger
    }
}

/// Drives one GB/T 32960 connection's `GBT32960SessionStateMachine` and performs its actions.
///
/// Sits after the TLS handler (when TLS is on), the idle-state handler and the GB/T decoder. A
/// realtime or reissue frame goes to its region's writer as a `GBT32960Entry`; its success answer
/// is written only when the writer's completion says the transaction holding it committed (a
/// duplicate is success, data outside the time horizon an error). Reading stops while the region's
/// queue is above its high watermark or `max_in_flight` frames await their commit.
public final class GBT32960SessionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = GBT32960Inbound
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let environment: GBT32960Environment
    private var machine: GBT32960SessionStateMachine?
    private var flow: RegionFlowControl?
    private var context: ChannelHandlerContext?
    private var inFlight = 0
    private var readBlocked = false
    private var readPending = false
    private var closing = false
    private var encoded: [UInt8] = []

    public init(environment: GBT32960Environment) {
        self.environment = environment
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        encoded.reserveCapacity(128)
        if let peer = environment.plainPeer, context.channel.isActive { start(peer, context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        if let peer = environment.plainPeer, machine == nil { start(peer, context: context) }
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        flow?.cancelWait(ObjectIdentifier(self))
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if machine != nil { environment.metrics.sessionClosed() }
        machine?.closed()
        flow?.cancelWait(ObjectIdentifier(self))
        environment.logins.release(ObjectIdentifier(self))
        context.fireChannelInactive()
    }

    private func start(_ peer: GBT32960Peer, context: ChannelHandlerContext) {
        guard let flow = environment.regions[peer.market] else {
            refuse(SessionRefusal(code: .unknownMarket, reason: "market \(peer.market) is not a region"), context)
            return
        }
        self.flow = flow
        machine = GBT32960SessionStateMachine(peer: peer, maxErrors: environment.settings.maxErrors)
        environment.metrics.sessionOpened()
        environment.logger.info("GB/T 32960 peer connected", metadata: ["peer": "\(peer)"])
    }

    private func refuse(_ refusal: SessionRefusal, _ context: ChannelHandlerContext) {
        environment.metrics.error(refusal.code.name.lowercased())
        environment.logger.notice(
            "GB/T 32960 connection refused",
            metadata: ["code": "\(refusal.code.name)", "reason": "\(refusal.reason)"])
        closing = true
        context.close(promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                .peerCertificate
            switch environment.authorize(certificate) {
            case .success(let peer): start(peer, context: context)
            case .failure(let refusal): refuse(refusal, context)
            }
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            environment.logger.debug("closing idle GB/T 32960 connection")
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing, var machine else { return }
        let action: GBT32960SessionStateMachine.Action
        var frameBytes: ByteBuffer?
        var header: GBT32960FrameHeader?
        switch unwrapInboundIn(data) {
        case .garbage(let error, _):
            environment.metrics.error(error.name)
            action = machine.garbage(error)
        case .refused(let refusedHeader, let error):
            environment.metrics.error(error.name)
            header = refusedHeader
            action = machine.refused(refusedHeader, error)
        case .frame(let frameHeader, let bytes):
            environment.metrics.frameReceived(frameHeader.command)
            let check = bytes.withUnsafeReadableBytes { raw in
                let unit = UnsafeRawBufferPointer(
                    rebasing: raw[GBT32960Format.headerSize..<(GBT32960Format.headerSize + frameHeader.dataLength)])
                return GBT32960FrameView(header: frameHeader, dataUnit: unit).check()
            }
            environment.metrics.outOfRange(check.outOfRange)
            header = frameHeader
            frameBytes = bytes
            action = machine.received(frameHeader, bodyError: check.error, serial: check.serial)
            if action != .none, case .answer(let flag, _, _) = action, flag != .success, let reason = machine.lastRefusal {
                environment.metrics.error(reason)
            }
        }
        self.machine = machine
        perform(action, header: header, bytes: frameBytes, context: context)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        environment.logger.debug("GB/T 32960 connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    public func read(context: ChannelHandlerContext) {
        if readBlocked || closing {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: actions

    private func perform(
        _ action: GBT32960SessionStateMachine.Action, header: GBT32960FrameHeader?, bytes: ByteBuffer?,
        context: ChannelHandlerContext
    ) {
        switch action {
        case .none:
            return
        case .close:
            closing = true
            context.close(promise: nil)
        case .answer(let flag, let data, let close):
            guard let header else { return }
            answer(header, flag, data, bytes: bytes, close: close, context: context)
        case .loginVehicle(let vin):
            guard var machine, let header else { return }
            var platform = false
            if case .platform = machine.peer { platform = true }
            let fresh = environment.logins.login(
                vin, owner: ObjectIdentifier(self), channel: context.channel, platform: platform)
            let next = machine.vehicleLogin(vin, duplicate: !fresh)
            self.machine = machine
            if !fresh { environment.metrics.error("vin_duplicate") }
            perform(next, header: header, bytes: bytes, context: context)
        case .store:
            guard let header, let bytes, let flow else { return }
            store(header, bytes: bytes, flow: flow, context: context)
        }
        if let header, header.command == .vehicleLogout || header.command == .platformLogout,
            case .answer(.success, _, _) = action
        {
            environment.logins.release(ObjectIdentifier(self), vin: header.vinField.vin)
        }
        if let header, header.command == .vehicleLogin || header.command == .platformLogin,
            case .answer(.success, _, _) = action
        {
            // A login answered success is this protocol's HELLO: the handshake timer (TLS and login within
            // limits.handshake_timeout_seconds) stops here and the frame idle timer alone remains.
            context.triggerUserOutboundEvent(SessionEvent.helloAccepted, promise: nil)
        }
    }

    private func store(_ header: GBT32960FrameHeader, bytes: ByteBuffer, flow: RegionFlowControl, context: ChannelHandlerContext) {
        // The entry: version, time base, then the frame (one copy of ~300 bytes into its own buffer).
        var entry = context.channel.allocator.buffer(capacity: GBT32960Entry.headerSize + bytes.readableBytes)
        entry.writeInteger(GBT32960Entry.version)
        entry.writeInteger(Int32(truncatingIfNeeded: environment.settings.utcOffsetSeconds), endianness: .little)
        entry.writeImmutableBuffer(bytes)
        let size = entry.readableBytes
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let metrics = environment.metrics
        let region = flow.region
        inFlight += 1
        do {
            try environment.sink.submit(
                IngestSubmission(region: region, gbt32960Entry: entry) { outcome in
                    flow.remove(size)
                    metrics.committed(region: region, outcome: outcome)
                    eventLoop.execute { loopBound.value.committed(header, bytes: bytes, outcome: outcome) }
                })
        } catch {
            inFlight -= 1
            environment.logger.warning(
                "storage refused a GB/T 32960 frame", metadata: ["region": "\(region)", "reason": "\(error.reason)"])
            environment.metrics.error("server_busy")
            if var machine {
                let action = machine.storageRefused()
                self.machine = machine
                perform(action, header: header, bytes: bytes, context: context)
            }
            return
        }
        if inFlight >= environment.settings.maxInFlight { readBlocked = true }
        if flow.add(size) && !readBlocked {
            let resume = NIOLoopBound(self, eventLoop: eventLoop)
            if flow.waitForRoom(ObjectIdentifier(self), resume: { eventLoop.execute { resume.value.resumeReading() } }) {
                readBlocked = true
            }
        }
    }

    private func committed(_ header: GBT32960FrameHeader, bytes: ByteBuffer, outcome: CommitOutcome) {
        inFlight -= 1
        guard var machine, let context else { return }
        let action = machine.committed(stored: outcome.rejected == 0)
        self.machine = machine
        if outcome.rejected > 0 { environment.metrics.error("outside_horizon") }
        perform(action, header: header, bytes: bytes, context: context)
        if inFlight < environment.settings.maxInFlight, flow.map({ $0.queuedBytes <= $0.highWatermark }) ?? true {
            resumeReading()
        }
    }

    private func resumeReading() {
        guard readBlocked, let context else { return }
        readBlocked = false
        if readPending && !closing {
            readPending = false
            context.read()
        }
    }

    private func answer(
        _ header: GBT32960FrameHeader, _ flag: GBT32960ResponseFlag, _ data: GBT32960SessionStateMachine.AnswerData,
        bytes: ByteBuffer?, close: Bool, context: ChannelHandlerContext
    ) {
        let offset = environment.settings.utcOffsetSeconds
        let serverTime = GBT32960Time(epochSeconds: environment.now() / 1000, utcOffsetSeconds: offset)
        encoded.removeAll(keepingCapacity: true)
        let frame = bytes ?? ByteBuffer()
        frame.withUnsafeReadableBytes { raw in
            let end = min(raw.count, GBT32960Format.headerSize + header.dataLength)
            let unit = UnsafeRawBufferPointer(rebasing: raw[min(end, GBT32960Format.headerSize)..<end])
            GBT32960Encoder.appendAnswer(
                to: header, response: flag, data: data, requestDataUnit: unit, serverTime: serverTime, to: &encoded)
        }
        environment.metrics.answerSent(header.command, flag)
        var buffer = context.channel.allocator.buffer(capacity: encoded.count)
        buffer.writeBytes(encoded)
        if close {
            closing = true
            environment.logger.info(
                "GB/T 32960 connection closed after repeated errors",
                metadata: ["last": "\(machine?.lastRefusal ?? "?")"])
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }
}

@available(*, unavailable)
extension GBT32960SessionHandler: Sendable {}
