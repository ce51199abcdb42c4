/// HELLO: the client says what it is (PROTOCOL.md 4.1).
public struct Hello: Sendable, Hashable {
    /// What kind of client is speaking; must match the certificate's role.
    public enum ClientKind: UInt8, Sendable {
        case vehicle = 1
        case gateway = 2
    }

    public var clientKind: ClientKind
    public var protocolVersion: UInt8
    public var clientTimeMs: Int64
    /// Printable ASCII, at most 64 bytes.
    public var softwareVersion: String

    public init(
        clientKind: ClientKind, protocolVersion: UInt8 = WireFormat.version, clientTimeMs: Int64,
        softwareVersion: String
    ) {
        self.clientKind = clientKind
        self.protocolVersion = protocolVersion
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
        self.clientTimeMs = payload.i64(4)
        self.softwareVersion = String(decoding: text, as: UTF8.self)
    }
}

/// WELCOME: the server's clock and the limits the client must honour (PROTOCOL.md 4.2).
public struct Welcome: Sendable, Hashable {
    public var serverTimeMs: Int64
    public var maxPayload: UInt32
    public var ackWindow: UInt16
    public var heartbeatSeconds: UInt16
    public var idleTimeoutSeconds: UInt16
    public var maxRecords: UInt16

    public init(
        serverTimeMs: Int64, maxPayload: UInt32, ackWindow: UInt16, heartbeatSeconds: UInt16,
        idleTimeoutSeconds: UInt16, maxRecords: UInt16
    ) {
        self.serverTimeMs = serverTimeMs
        self.maxPayload = maxPayload
        self.ackWindow = ackWindow
        self.heartbeatSeconds = heartbeatSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxRecords = maxRecords
    }

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count == 24 else { throw .badPayloadLength(.welcome, length: payload.count) }
        let window = payload.u16(12)
        if window == 0 || window > 1024 { throw .invalidFieldValue(field: "ack_window", record: -1) }
        self.serverTimeMs = payload.i64(0)
        self.maxPayload = payload.u32(8)
        self.ackWindow = window
        self.heartbeatSeconds = payload.u16(14)
        self.idleTimeoutSeconds = payload.u16(16)
        self.maxRecords = payload.u16(18)
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
