/// HELLO: the client says what it is (PROTOCOL.md 4.1).
public struct Hello: Sendable, Hashable {
    /// What kind of client is speaking; must match the certificate's role.
    public enum ClientKind: UInt8, Sendable {
        case vehicle = 1
        case gateway = 2
    }

    public var clientKind: ClientKind
    public var protocolVersion: UInt8
    /// The highest minor protocol version the client speaks (PROTOCOL.md 4.1): 0 for 1.0, 1 for 1.1.
    /// A 1.0 client sends 0 here (the byte was reserved), so 1.0 and 1.1 negotiate without a new major.
    public var protocolMinor: UInt8
    public var clientTimeMs: Int64
    /// Printable ASCII, at most 64 bytes.
    public var softwareVersion: String

    public init(
        clientKind: ClientKind, protocolVersion: UInt8 = WireFormat.version, clientTimeMs: Int64,
        softwareVersion: String, protocolMinor: UInt8 = 0
    ) {
        self.clientKind = clientKind
        self.protocolVersion = protocolVersion
        self.protocolMinor = protocolMinor
        self.clientTimeMs = clientTimeMs
        self.softwareVersion = softwareVersion
    }

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count >= 13 else { throw .badPayloadLength(.hello, length: payload.count) }
        let length = Int(payload.u8(12))
        if length > WireFormat.maxSoftwareVersionLength { throw .invalidPayload("software version over 64 bytes") }
        guard payload.count == 13 + length else { throw .badPayloadLength(.hello, length: payload.count) }
        guard let kind = ClientKind(rawValue: payload.u8(0)) else { throw .invalidPayload("unknown client kind") }
        let version = payload.u8(1)
        if version != WireFormat.version { throw .unsupportedVersion(version) }
        let text = UnsafeRawBufferPointer(rebasing: payload[13..<(13 + length)])
        for byte in text where byte < 0x20 || byte > 0x7E {
            throw .invalidPayload("software version is not printable ASCII")
        }
        self.clientKind = kind
        self.protocolVersion = version
        self.protocolMinor = payload.u8(2)
        self.clientTimeMs = payload.i64(4)
        self.softwareVersion = String(decoding: text, as: UTF8.self)
    }
}

/// The server's time horizon as WELCOME 1.1 announces it (PROTOCOL.md 4.2): records older than
/// `pastSeconds` or further ahead than `futureSeconds` of the server clock are not stored.
public struct AnnouncedHorizon: Sendable, Hashable {
    public var pastSeconds: UInt32
    public var futureSeconds: UInt32

    public init(pastSeconds: UInt32, futureSeconds: UInt32) {
        self.pastSeconds = pastSeconds
        self.futureSeconds = futureSeconds
    }
}

/// WELCOME: the server's clock and the limits the client must honour (PROTOCOL.md 4.2).
///
/// 24 payload bytes in protocol 1.0; 32 in 1.1, which appends the time horizon (`horizon`), sent only
/// to a client whose HELLO announced minor version 1 or later.
public struct Welcome: Sendable, Hashable {
    public var serverTimeMs: Int64
    public var maxPayload: UInt32
    public var ackWindow: UInt16
    public var heartbeatSeconds: UInt16
    public var idleTimeoutSeconds: UInt16
    public var maxRecords: UInt16
    /// The time horizon (protocol 1.1); nil in a 1.0 WELCOME.
    public var horizon: AnnouncedHorizon?

    public init(
        serverTimeMs: Int64, maxPayload: UInt32, ackWindow: UInt16, heartbeatSeconds: UInt16,
        idleTimeoutSeconds: UInt16, maxRecords: UInt16, horizon: AnnouncedHorizon? = nil
    ) {
        self.serverTimeMs = serverTimeMs
        self.maxPayload = maxPayload
        self.ackWindow = ackWindow
        self.heartbeatSeconds = heartbeatSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxRecords = maxRecords
        self.horizon = horizon
    }

    /// Payload length of a 1.0 WELCOME.
    public static let payloadLength10 = 24
    /// Payload length of a 1.1 WELCOME (a later minor version may append more; receivers skip it).
    public static let payloadLength11 = 32

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count == Self.payloadLength10 || payload.count >= Self.payloadLength11 else {
            throw .badPayloadLength(.welcome, length: payload.count)
        }
        let window = payload.u16(12)
        if window == 0 || window > 1024 { throw .invalidFieldValue(field: "ack_window", record: -1) }
        self.serverTimeMs = payload.i64(0)
        self.maxPayload = payload.u32(8)
        self.ackWindow = window
        self.heartbeatSeconds = payload.u16(14)
        self.idleTimeoutSeconds = payload.u16(16)
        self.maxRecords = payload.u16(18)
        self.horizon = payload.count >= Self.payloadLength11
            ? AnnouncedHorizon(pastSeconds: payload.u32(24), futureSeconds: payload.u32(28)) : nil
    }
}

/// ACK: every data frame up to `sequence` is durably stored (PROTOCOL.md 4.5).
public struct Ack: Sendable, Hashable {
    public var sequence: UInt32
    /// Records in the newly acknowledged frames that were outside the time horizon and not stored.
    public var rejectedRecords: UInt32

    public init(sequence: UInt32, rejectedRecords: UInt32 = 0) {
        self.sequence = sequence
        self.rejectedRecords = rejectedRecords
    }

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count == 8 else { throw .badPayloadLength(.ack, length: payload.count) }
        self.sequence = payload.u32(0)
        self.rejectedRecords = payload.u32(4)
    }
}

/// ERROR: a code, the offending sequence and a reason; the server closes after it (PROTOCOL.md 4.6).
public struct ErrorMessage: Sendable, Hashable {
    /// The code as sent; `knownCode` is nil for a code this version does not know.
    public var rawCode: UInt16
    public var sequence: UInt32
    public var reason: String

    public var knownCode: ErrorCode? { ErrorCode(rawValue: rawCode) }

    public init(code: ErrorCode, sequence: UInt32 = 0, reason: String) {
        self.rawCode = code.rawValue
        self.sequence = sequence
        self.reason = reason
    }

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count >= 8, payload.count <= 8 + WireFormat.maxReasonLength else {
            throw .badPayloadLength(.error, length: payload.count)
        }
        self.rawCode = payload.u16(0)
        self.sequence = payload.u32(4)
        let text = UnsafeRawBufferPointer(rebasing: payload[8...])
        guard let reason = String(validating: text, as: UTF8.self) else {
            throw .invalidPayload("reason is not UTF-8")
        }
        self.reason = reason
    }
}

/// PING/PONG payload: an opaque value the answer echoes (PROTOCOL.md 4.7).
public struct Ping: Sendable, Hashable {
    public var opaque: UInt64

    public init(opaque: UInt64) { self.opaque = opaque }

    @inlinable
    public init(payload: UnsafeRawBufferPointer, type: FrameType = .ping) throws(FrameError) {
        guard payload.count == 8 else { throw .badPayloadLength(type, length: payload.count) }
        self.opaque = payload.u64(0)
    }
}

/// BYE: the sender closes after this frame (PROTOCOL.md 4.8).
public struct Bye: Sendable, Hashable {
    /// Why the sender is closing.
    public enum Reason: UInt8, Sendable {
        case normal = 0
        case serverShutdown = 1
        case idleTimeout = 2
        case reloading = 3
        case sleeping = 4
    }

    public var reason: Reason

    public init(reason: Reason) { self.reason = reason }

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count == 4 else { throw .badPayloadLength(.bye, length: payload.count) }
        guard let reason = Reason(rawValue: payload.u8(0)) else { throw .invalidPayload("unknown BYE reason") }
        self.reason = reason
    }
}
