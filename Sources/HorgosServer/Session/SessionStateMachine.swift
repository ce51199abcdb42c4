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

    public init(ackWindow: Int = 64, maxPayload: Int = WireFormat.defaultMaxPayload, heartbeatSeconds: Int = 30,
                idleTimeoutSeconds: Int = 90) {
        precondition((1...1024).contains(ackWindow), "ack window must be 1...1024")
        self.ackWindow = ackWindow
        self.maxPayload = maxPayload
        self.heartbeatSeconds = heartbeatSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
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
    }

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

    /// A decoded frame arrived. `vin` is the data frame's VIN (nil for control frames).
    public mutating func received(_ header: FrameHeader, vin: VIN?, nowMs: Int64) -> Action {
        switch state {
        case .closed, .draining:
            // Frames after BYE or during shutdown are not read by the handler; ignore stragglers.
            return .none
        case .awaitingHello:
            guard header.type == .hello else {
                return fail(.helloRequired, header, "the first frame must be HELLO, got \(header.type)")
            }
            return .none  // the handler calls `hello(_:)` with the decoded payload
        case .streaming:
            break
        }
        switch header.type {
        case .hello:
            return fail(.unexpectedFrame, header, "HELLO was already received")
        case .welcome, .ack, .error:
            return fail(.unexpectedFrame, header, "\(header.type) frames are sent by the server only")
        case .pong:
            return .none
        case .ping, .bye:
            return .none  // the handler calls `ping(_:)` / `bye(_:)` with the payload
        case .telemetry, .event:
            if header.sequence != lastReceived &+ 1 || lastReceived == UInt32.max {
                return fail(.sequenceGap, header, "expected sequence \(lastReceived &+ 1), got \(header.sequence)")
            }
            if Int(header.sequence - lastAcked) > limits.ackWindow {
                return fail(.windowExceeded, header, "more than \(limits.ackWindow) frames unacknowledged")
            }
            if peer.role == .vehicle, let vin, vin != peer.vin {
                return fail(.vinNotAllowed, header, "this certificate may only send VIN \(peer.vin?.description ?? "-")")
            }
            lastReceived = header.sequence
            return .store(sequence: header.sequence)
        }
    }

    /// The HELLO payload of the first frame.
    public mutating func hello(_ hello: Hello, nowMs: Int64) -> Action {
        guard state == .awaitingHello else {
            return fail(.unexpectedFrame, nil, "HELLO was already received")
        }
        let expected: Hello.ClientKind = peer.role == .vehicle ? .vehicle : .gateway
        guard hello.clientKind == expected else {
            return fail(.roleMismatch, nil, "HELLO says \(hello.clientKind) but the certificate is a \(peer.role)")
        }
        state = .streaming
        return .sendWelcome(
            Welcome(
                serverTimeMs: nowMs, maxPayload: UInt32(limits.maxPayload), ackWindow: UInt16(limits.ackWindow),
                heartbeatSeconds: UInt16(clamping: limits.heartbeatSeconds),
                idleTimeoutSeconds: UInt16(clamping: limits.idleTimeoutSeconds), maxRecords: UInt16(limits.maxRecords)))
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
    public mutating func protocolViolation(_ error: FrameError, sequence: UInt32) -> Action {
        guard state != .closed else { return .none }
        state = .closed
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
        if reason == .normal && ack == nil { return .close }
        return .finish(ack, reason == .normal ? .normal : reason)
    }

    private mutating func fail(_ code: ErrorCode, _ header: FrameHeader?, _ reason: String) -> Action {
        state = .closed
        return .sendErrorAndClose(ErrorMessage(code: code, sequence: header?.sequence ?? 0, reason: reason))
    }
}
