import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore

/// Horgos's own protocol (Proto/PROTOCOL.md) as a pipeline plug-in: the frame decoder
/// (`FrameChannelDecoder`), the session (``NativeSession`` around ``SessionStateMachine``), ACK / ERROR /
/// BYE answers, and the certificate's role and VIN as the peer (``SessionPeer``).
public struct NativeProtocol: IngestProtocol {
    public typealias Decoder = FrameChannelDecoder
    public typealias Session = NativeSession

    /// `native`.
    public static let name = "native"

    /// What sessions enforce and announce in WELCOME (a reload replaces it for new connections).
    public var limits: SessionLimits
    /// Hears of ERROR frames, ACKs and truncated streams (the daemon's is ``NativeMetrics``).
    public var observer: any NativeSessionObserver
    /// `horgos_frames_total{type,region}` of each region, resolved once per session.
    let frameCounters: [String: NativeFrameCounters]
    public var logger: Logger

    /// The protocol with `limits`, counting frames of `regions`.
    public init(
        limits: SessionLimits, regions: [String], observer: any NativeSessionObserver = NativeMetrics(),
        logger: Logger
    ) {
        self.limits = limits
        self.observer = observer
        self.frameCounters = Dictionary(uniqueKeysWithValues: regions.map { ($0, NativeFrameCounters(region: $0)) })
        self.logger = logger
    }

    public func makeDecoder(maxPayload: Int) -> FrameChannelDecoder { FrameChannelDecoder(maxPayload: maxPayload) }

    /// A vehicle certificate is its VIN, a gateway certificate any VIN of its market.
    public func peer(for identity: PeerIdentity) -> Result<SessionPeer, SessionRefusal> {
        .success(identity.sessionPeer)
    }

    public func makeSession(peer: SessionPeer, context: SessionContext) -> NativeSession {
        NativeSession(
            peer: peer, limits: limits, frames: frameCounters[peer.market] ?? NativeFrameCounters(region: peer.market),
            observer: observer, logger: logger)
    }

    public static func consumedBytes(_ frame: InboundFrame) -> Int { frame.header.frameLength }

    /// ERROR with the refusal's code (server sequence 1: the first frame the server sends), then close.
    public func encodeRefusal(_ refusal: SessionRefusal, into buffer: inout ByteBuffer) {
        observer.errorSent(refusal.code)
        var bytes: [UInt8] = []
        FrameEncoder.appendError(ErrorMessage(code: refusal.code, reason: refusal.reason), sequence: 1, to: &bytes)
        buffer.writeBytes(bytes)
    }
}

/// Hears what happens on native sessions (metrics; tests record it).
public protocol NativeSessionObserver: Sendable {
    /// An ERROR frame is sent.
    func errorSent(_ code: ErrorCode)
    /// An ACK is written.
    func ackSent()
    /// The client's stream ended inside a frame: the connection closed without an ERROR frame
    /// (nobody is left to read one; PROTOCOL.md 2, check 1).
    func streamEndedInsideFrame()
}

extension NativeSessionObserver {
    public func errorSent(_ code: ErrorCode) {}
    public func ackSent() {}
    public func streamEndedInsideFrame() {}
}

/// One native connection's protocol state: ``SessionStateMachine`` (the rules of PROTOCOL.md sections 5 and
/// 6, unchanged) plus what the pipeline needs of it: parse the payload, turn the machine's actions into
/// answers, encode them with the server's sequence numbers.
///
/// A class, not a struct: the connection state machine holds it in an optional, and a struct there was
/// copied out and back for every call, so the machine's arrays were shared when it wrote them and were
/// copied (two allocations and ~1,300 instructions per native frame, callgrind). One per connection.
public final class NativeSession: ProtocolSession {
    public typealias Inbound = InboundFrame
    public typealias Peer = SessionPeer
    /// A stored data frame's sequence number.
    public typealias Pending = UInt32

    /// A frame the server sends.
    public enum Answer: Sendable, Hashable {
        case welcome(Welcome)
        case pong(UInt64)
        case ack(Ack)
        case error(ErrorMessage)
        case bye(Bye.Reason)
    }

    /// The protocol rules of this connection.
    public private(set) var machine: SessionStateMachine
    private let observer: any NativeSessionObserver
    private let frames: NativeFrameCounters
    private let logger: Logger
    private var serverSequence: UInt32 = 0
    /// Reused encoding space for server frames (no allocation per ACK).
    private var encoded: [UInt8] = []

    init(
        peer: SessionPeer, limits: SessionLimits, frames: NativeFrameCounters, observer: any NativeSessionObserver,
        logger: Logger
    ) {
        machine = SessionStateMachine(peer: peer, limits: limits)
        self.frames = frames
        self.observer = observer
        self.logger = logger
        encoded.reserveCapacity(64)
    }

    public var market: String { machine.peer.market }
    public var role: String { machine.peer.role.rawValue }

    public func received(_ frame: InboundFrame, nowMs: Int64, into output: inout SessionOutput<NativeSession>) {
        let header = frame.header
        // Header-only session checks come before the payload's (PROTOCOL.md 6.1).
        let admitted = machine.admit(header)
        if admitted != .none {
            apply(admitted, &output)
            return
        }
        let maxRecords = machine.limits.maxRecords
        let parsed: Result<ParsedFrame, FrameError> = frame.bytes.withUnsafeReadableBytes { raw in
            let payload = UnsafeRawBufferPointer(rebasing: raw[WireFormat.headerSize..<(header.frameLength - 4)])
            do {
                return .success(
                    try ParsedFrame(FrameView(header: header, payload: payload).message(maxRecords: maxRecords)))
            } catch {
                return .failure(error as! FrameError)
            }
        }
        let message: ParsedFrame
        switch parsed {
        case .failure(let error):
            apply(machine.protocolViolation(error, sequence: header.sequence), &output)
            return
        case .success(let parsedMessage):
            message = parsedMessage
        }
        frames.received(header.type)
        var action = machine.received(header, vin: message.vin, nowMs: nowMs)
        if action == .none {
            switch message {
            case .hello(let hello): action = machine.hello(hello, nowMs: nowMs)
            case .ping(let opaque): action = machine.ping(opaque)
            case .bye: action = machine.bye()
            default: break
            }
        }
        // After the client's BYE nothing more is read (PROTOCOL.md 4.8), even while commits are pending.
        if case .draining = machine.state { output.stopReading = true }
        if case .store(let sequence) = action {
            output.store = StoreRequest(
                pending: sequence, payload: frame.payload, kind: header.type == .event ? .event : .telemetry,
                records: message.records, queuedBytes: header.frameLength, forwardedVIN: machine.peer.role == .gateway ? message.vin : nil)
            return
        }
        apply(action, &output)
    }

    public func committed(_ sequence: UInt32, outcome: CommitOutcome, into output: inout SessionOutput<NativeSession>) {
        apply(machine.frameCommitted(sequence, rejected: UInt32(clamping: outcome.rejected)), &output)
    }

    /// A gateway's frame for a revoked VIN is acknowledged with all its records rejected and not stored:
    /// the gateway keeps serving its other vehicles and does not resend it.
    public func refused(
        _ sequence: UInt32, revokedVIN vin: VIN, records: Int, into output: inout SessionOutput<NativeSession>
    ) {
        apply(machine.frameCommitted(sequence, rejected: UInt32(clamping: max(records, 1))), &output)
    }

    public func storageRefused(_ sequence: UInt32, reason: String, into output: inout SessionOutput<NativeSession>) {
        apply(machine.serverFailure(.serverBusy, sequence: sequence, reason: reason), &output)
    }

    public func decodingFailed(_ error: any Error, into output: inout SessionOutput<NativeSession>) {
        if let framing = error as? FramingError {
            apply(machine.protocolViolation(framing.error, sequence: framing.sequence), &output)
        } else if let frameError = error as? FrameError {
            apply(machine.protocolViolation(frameError, sequence: 0), &output)
        } else {
            logger.debug("connection error", metadata: ["error": "\(error)"])
            output.close = .now
        }
    }

    public func end(_ reason: SessionEnd, into output: inout SessionOutput<NativeSession>) {
        switch reason {
        case .serverShutdown: apply(machine.startDraining(.serverShutdown), &output)
        case .idleTimeout: apply(machine.startDraining(.idleTimeout), &output)
        case .certificateRevoked:
            apply(
                machine.serverFailure(
                    .certificateRevoked, sequence: 0, reason: "the certificate was revoked while connected"),
                &output)
        }
    }

    public func closed() { machine.closed() }

    /// Cumulative ACKs: the later one says both, with the rejected records of both.
    public static func coalesce(_ previous: inout Answer, with next: Answer) -> Bool {
        guard case .ack(let earlier) = previous, case .ack(let later) = next else { return false }
        previous = .ack(Ack(sequence: later.sequence, rejectedRecords: earlier.rejectedRecords &+ later.rejectedRecords))
        return true
    }

    public func encode(_ answer: Answer, nowMs: Int64, into buffer: inout ByteBuffer) {
        serverSequence &+= 1
        let sequence = serverSequence
        encoded.removeAll(keepingCapacity: true)
        switch answer {
        case .welcome(let welcome): FrameEncoder.appendWelcome(welcome, sequence: sequence, to: &encoded)
        case .pong(let opaque): FrameEncoder.appendPing(opaque, type: .pong, sequence: sequence, to: &encoded)
        case .ack(let ack):
            FrameEncoder.appendAck(ack, sequence: sequence, to: &encoded)
            observer.ackSent()
        case .error(let message): FrameEncoder.appendError(message, sequence: sequence, to: &encoded)
        case .bye(let reason): FrameEncoder.appendBye(Bye(reason: reason), sequence: sequence, to: &encoded)
        }
        buffer.writeBytes(encoded)
    }

    /// The machine's action as answers and a close.
    private func apply(_ action: SessionStateMachine.Action, _ output: inout SessionOutput<NativeSession>) {
        switch action {
        case .none, .store:
            return
        case .sendWelcome(let welcome):
            output.answer(.welcome(welcome))
            output.handshakeComplete = true
        case .sendPong(let opaque):
            output.answer(.pong(opaque))
        case .sendAck(let ack):
            output.answer(.ack(ack))
        case .sendErrorAndClose(let message):
            if let code = message.knownCode {
                observer.errorSent(code)
                logger.info(
                    "protocol error, closing", metadata: ["code": "\(code.name)", "reason": "\(message.reason)"])
            }
            output.answer(.error(message))
            output.close = .afterAnswers
        case .finish(let ack, let reason):
            if let ack { output.answer(.ack(ack)) }
            output.answer(.bye(reason))
            output.close = .afterAnswers
        case .close:
            output.close = .afterAnswers
        case .closeTruncated(let reason):
            observer.streamEndedInsideFrame()
            logger.info("stream ended inside a frame, closing without ERROR", metadata: ["reason": "\(reason)"])
            output.close = .now
        }
    }
}

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
