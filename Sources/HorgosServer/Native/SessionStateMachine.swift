import HorgosWire

/// Who is at the other end of a connection, as its certificate says (PROTOCOL.md section 1).
public struct SessionPeer: Sendable, Hashable {
    /// Vehicle or gateway, from the certificate.
    public enum Role: String, Sendable, Hashable {
        case vehicle
        case gateway
    }

    public var role: Role
    /// The vehicle's own VIN (vehicles only).
    public var vin: VIN?
    /// The ISO 3166-1 alpha-2 market the certificate names; it decides the region.
    public var market: String
    /// The certificate serial (lower-case hex, the revocation lists' form), so a reload can find the
    /// sessions it revokes; nil when unknown (tests).
    public var serialNumber: String?

    public init(role: Role, vin: VIN?, market: String, serialNumber: String? = nil) {
        self.role = role
        self.vin = vin
        self.market = market
        self.serialNumber = serialNumber
    }
}

/// The limits a session enforces and announces in WELCOME.
public struct SessionLimits: Sendable, Hashable {
    /// Data frames in flight (sent, not yet acknowledged); 1...1024.
    public var ackWindow: Int
    public var maxPayload: Int
    public var heartbeatSeconds: Int
    public var idleTimeoutSeconds: Int
    /// The store's time horizon, announced in WELCOME to clients that speak protocol 1.1.
    public var horizon: AnnouncedHorizon

    public init(ackWindow: Int = 64, maxPayload: Int = WireFormat.defaultMaxPayload, heartbeatSeconds: Int = 30,
                idleTimeoutSeconds: Int = 90,
                horizon: AnnouncedHorizon = AnnouncedHorizon(pastSeconds: 7 * 86_400, futureSeconds: 86_400)) {
        precondition((1...1024).contains(ackWindow), "ack window must be 1...1024")
        self.ackWindow = ackWindow
        self.maxPayload = maxPayload
        self.heartbeatSeconds = heartbeatSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.horizon = horizon
    }

    /// Records that fit one TELEMETRY frame at this payload limit (announced in WELCOME).
    public var maxRecords: Int {
        min(Int(UInt16.max), (maxPayload - WireFormat.telemetryHeaderSize) / WireFormat.recordSizeV1)
    }
}

/// The protocol rules of one connection, as a pure state machine (no I/O, no clocks, no NIO).
///
/// The channel handler feeds it decoded frames and storage completions and performs the actions it
/// returns. Every rule of PROTOCOL.md sections 5 and 6 lives here, so it is tested without sockets:
/// HELLO first and once, role check, VIN ownership, sequence numbering, the ack window, cumulative
/// ACKs only after commit, PING/PONG, BYE and draining.
///
/// States: `awaitingHello` -> `streaming` -> `draining` -> `closed`.
public struct SessionStateMachine: Sendable {
    /// Where the connection is in its life.
    public enum State: Sendable, Hashable {
        case awaitingHello
        case streaming
        /// No more frames are accepted; waiting for pending commits, then final ACK, BYE, close.
        case draining(Bye.Reason)
        case closed
    }

    /// What the handler must do after an input.
    public enum Action: Sendable, Hashable {
        case none
        case sendWelcome(Welcome)
        /// Hand a data frame to the region's writer; report its commit with `frameCommitted`.
        case store(sequence: UInt32)
        case sendPong(UInt64)
        case sendAck(Ack)
        /// Send ERROR and close the connection.
        case sendErrorAndClose(ErrorMessage)
        /// Send an ACK if given, then BYE with the reason, then close.
        case finish(Ack?, Bye.Reason)
        /// Close without sending anything more (the peer already said BYE and nothing is pending).
        case close
        /// The peer's stream ended inside a frame: nothing can be sent any more (PROTOCOL.md 2, check 1),
        /// so no ERROR is claimed; log `reason`, count it, close.
        case closeTruncated(reason: String)
    }

    /// The highest minor protocol version this server speaks (1.1).
    public static let protocolMinor: UInt8 = 1

    public private(set) var state: State = .awaitingHello
    public let peer: SessionPeer
    public let limits: SessionLimits

    /// The sequence of the last data frame received.
    public private(set) var lastReceived: UInt32 = 0
    /// The sequence of the last ACK sent.
    public private(set) var lastAcked: UInt32 = 0
    /// The contiguous prefix of data frames that are committed.
    public private(set) var committedThrough: UInt32 = 0
    /// Records refused by the time horizon in frames committed but not yet acknowledged.
    private var rejectedSinceAck: UInt32 = 0
    /// Commit flags for frames after `committedThrough`, indexed by sequence modulo the window.
    private var committedOutOfOrder: [Bool]
    private var rejectedOutOfOrder: [UInt32]

    public init(peer: SessionPeer, limits: SessionLimits) {
        self.peer = peer
        self.limits = limits
        self.committedOutOfOrder = Array(repeating: false, count: limits.ackWindow)
        self.rejectedOutOfOrder = Array(repeating: 0, count: limits.ackWindow)
    }

    /// Data frames received and not yet covered by an ACK.
    public var unacknowledged: Int { Int(lastReceived - lastAcked) }

    /// Data frames handed to storage and not yet committed.
    public var pendingCommits: Int { Int(lastReceived - committedThrough) }

    /// The checks a frame's header alone decides, made before its payload is parsed (PROTOCOL.md 6.1,
    /// steps 2 and 3): HELLO first (`HELLO_REQUIRED`), HELLO once and no server-only frame types from
    /// a client (`UNEXPECTED_FRAME`). `.none` means: parse the payload, then call `received`.
    public mutating func admit(_ header: FrameHeader) -> Action {
        switch state {
        case .closed, .draining:
            return .none
        case .awaitingHello:
            guard header.type == .hello else {
                return fail(.helloRequired, header, "the first frame must be HELLO, got \(header.type)")
            }
            return .none
        case .streaming:
            switch header.type {
            case .hello:
                return fail(.unexpectedFrame, header, "HELLO was already received")
            case .welcome, .ack, .error:
                return fail(.unexpectedFrame, header, "\(header.type) frames are sent by the server only")
            default:
                return .none
            }
        }
    }

    /// A frame whose payload passed its checks arrived. `vin` is the data frame's VIN (nil for
    /// control frames). Data frames are checked in the order of PROTOCOL.md 6.1, step 5:
    /// `VIN_NOT_ALLOWED` (permanent: give up) before `SEQUENCE_GAP`, then `WINDOW_EXCEEDED` (both the
    /// client's bookkeeping: retry), so the same frame gets the same answer from every server.
    public mutating func received(_ header: FrameHeader, vin: VIN?, nowMs: Int64) -> Action {
        let admitted = admit(header)
        guard admitted == .none, state == .streaming else { return admitted }
        switch header.type {
        case .hello, .welcome, .ack, .error, .pong, .ping, .bye:
            return .none  // the handler calls `hello(_:)`, `ping(_:)`, `bye()` with the payload
        case .telemetry, .event:
            if peer.role == .vehicle, let vin, vin != peer.vin {
                let own = peer.vin?.description ?? "-"
                return fail(.vinNotAllowed, header, "this certificate may only send VIN \(own)")
            }
            if header.sequence != lastReceived &+ 1 || lastReceived == UInt32.max {
                return fail(.sequenceGap, header, "expected sequence \(lastReceived &+ 1), got \(header.sequence)")
            }
            if Int(header.sequence - lastAcked) > limits.ackWindow {
                return fail(.windowExceeded, header, "more than \(limits.ackWindow) frames unacknowledged")
            }
            lastReceived = header.sequence
            return .store(sequence: header.sequence)
        }
    }

    /// The HELLO payload of the first frame.
    public mutating func hello(_ hello: Hello, nowMs: Int64) -> Action {
        if case .draining = state { return .none }  // after BYE nothing more is read
        guard state == .awaitingHello else {
            return fail(.unexpectedFrame, nil, "HELLO was already received")
        }
        let expected: Hello.ClientKind = peer.role == .vehicle ? .vehicle : .gateway
        guard hello.clientKind == expected else {
            return fail(.roleMismatch, nil, "HELLO says \(hello.clientKind) but the certificate is a \(peer.role)")
        }
        state = .streaming
        // Protocol 1.1 (PROTOCOL.md 9): the horizon only for a client that announced minor 1 or later,
        // so a 1.0 client gets the 1.0 WELCOME byte for byte.
        let negotiatedMinor = min(hello.protocolMinor, Self.protocolMinor)
        return .sendWelcome(
            Welcome(
                serverTimeMs: nowMs, maxPayload: UInt32(limits.maxPayload), ackWindow: UInt16(limits.ackWindow),
                heartbeatSeconds: UInt16(clamping: limits.heartbeatSeconds),
                idleTimeoutSeconds: UInt16(clamping: limits.idleTimeoutSeconds), maxRecords: UInt16(limits.maxRecords),
                horizon: negotiatedMinor >= 1 ? limits.horizon : nil))
    }

    /// A PING arrived: answer with PONG.
    public func ping(_ opaque: UInt64) -> Action {
        state == .streaming ? .sendPong(opaque) : .none
    }

    /// The peer said BYE: stop accepting frames, ack what is pending, then close.
    public mutating func bye() -> Action {
        guard state == .streaming else { return .none }
        state = .draining(.normal)
        return finishIfDrained()
    }

    /// The server is shutting down (or the idle timer fired): stop reading and finish.
    public mutating func startDraining(_ reason: Bye.Reason) -> Action {
        switch state {
        case .awaitingHello:
            state = .closed
            return .finish(nil, reason)
        case .streaming:
            state = .draining(reason)
            return finishIfDrained()
        case .draining, .closed:
            return .none
        }
    }

    /// The frame with `sequence` is committed; `rejected` records of it were outside the time horizon.
    ///
    /// Returns the cumulative ACK to send when the committed prefix advanced.
    public mutating func frameCommitted(_ sequence: UInt32, rejected: UInt32) -> Action {
        guard sequence > committedThrough, sequence <= lastReceived else { return .none }
        let slot = Int(sequence % UInt32(limits.ackWindow))
        committedOutOfOrder[slot] = true
        rejectedOutOfOrder[slot] = rejected
        var advanced = false
        while committedThrough < lastReceived {
            let next = committedThrough + 1
            let nextSlot = Int(next % UInt32(limits.ackWindow))
            guard committedOutOfOrder[nextSlot] else { break }
            committedOutOfOrder[nextSlot] = false
            rejectedSinceAck &+= rejectedOutOfOrder[nextSlot]
            rejectedOutOfOrder[nextSlot] = 0
            committedThrough = next
            advanced = true
        }
        guard advanced else { return .none }
        if case .draining = state { return finishIfDrained() }
        if state == .closed { return .none }
        return .sendAck(takeAck())
    }

    /// A frame could not be decoded or its payload is invalid: ERROR with the error's code, then close.
    ///
    /// `sequence` is the offending frame's header sequence when its header was read whole and trusted
    /// (payload checks, `FRAME_TOO_LARGE`, `BAD_CHECKSUM`), else 0 (PROTOCOL.md 4.6). A stream that
    /// ended inside a frame gets no ERROR: there is no one left to read it.
    public mutating func protocolViolation(_ error: FrameError, sequence: UInt32) -> Action {
        guard state != .closed else { return .none }
        if case .draining = state { return .none }  // after BYE nothing more is read, bad bytes included
        state = .closed
        if case .truncatedFrame = error { return .closeTruncated(reason: error.reason) }
        return .sendErrorAndClose(ErrorMessage(code: error.code, sequence: sequence, reason: error.reason))
    }

    /// The server cannot take a frame (storage refused it): ERROR with `code`, then close.
    public mutating func serverFailure(_ code: ErrorCode, sequence: UInt32, reason: String) -> Action {
        guard state != .closed else { return .none }
        return fail(code, FrameHeader(type: .telemetry, sequence: sequence, payloadLength: 0), reason)
    }

    /// The connection is gone (closed by either side or by an error).
    public mutating func closed() {
        state = .closed
    }

    private mutating func takeAck() -> Ack {
        let ack = Ack(sequence: committedThrough, rejectedRecords: rejectedSinceAck)
        lastAcked = committedThrough
        rejectedSinceAck = 0
        return ack
    }

    private mutating func finishIfDrained() -> Action {
        guard case .draining(let reason) = state, committedThrough == lastReceived else { return .none }
        state = .closed
        let ack: Ack? = committedThrough > lastAcked ? takeAck() : nil
        // A client's BYE is always answered with BYE (reason 0), after the final ACK if one is due.
        return .finish(ack, reason)
    }

    private mutating func fail(_ code: ErrorCode, _ header: FrameHeader?, _ reason: String) -> Action {
        state = .closed
        return .sendErrorAndClose(ErrorMessage(code: code, sequence: header?.sequence ?? 0, reason: reason))
    }
}
