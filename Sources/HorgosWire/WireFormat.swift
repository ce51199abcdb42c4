/// Fixed numbers of protocol v1 (Proto/PROTOCOL.md is the law; these mirror it).
///
/// Kept in one place so the parser, the encoder, the store and the documentation tests agree.
public enum WireFormat {
    /// First two header bytes, 0x48 'H', 0x47 'G', read as a little-endian u16.
    public static let magic: UInt16 = 0x4748
    /// The protocol version this library speaks.
    public static let version: UInt8 = 1
    /// Bytes before the payload: magic, version, type, sequence, payload length.
    public static let headerSize = 12
    /// Bytes after the payload: the CRC-32C.
    public static let trailerSize = 4
    /// Header plus trailer.
    public static let overhead = headerSize + trailerSize
    /// Default maximum payload length a server accepts.
    public static let defaultMaxPayload = 65_536
    /// Record size of protocol v1; larger record sizes are read as v1 plus skipped bytes.
    public static let recordSizeV1 = 40
    /// TELEMETRY payload bytes before the first record.
    public static let telemetryHeaderSize = 28
    /// EVENT payload bytes before the first DTC.
    public static let eventHeaderSize = 32
    /// Bytes of one DTC entry in an EVENT.
    public static let dtcSize = 8
    /// Maximum DTCs in one EVENT frame.
    public static let maxDTCs = 1024
    /// Maximum length of the HELLO software version string.
    public static let maxSoftwareVersionLength = 64
    /// Maximum length of an ERROR reason string.
    public static let maxReasonLength = 512
    /// Maximum records in one TELEMETRY frame at the default payload limit.
    public static let defaultMaxRecords = (defaultMaxPayload - telemetryHeaderSize) / recordSizeV1
}

/// The frame types of protocol v1.
public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case welcome = 0x02
    case telemetry = 0x10
    case event = 0x11
    case ack = 0x20
    case error = 0x21
    case ping = 0x30
    case pong = 0x31
    case bye = 0x40

    /// The frame type of a header's type byte; nil for a byte that is not in PROTOCOL.md section 4.
    ///
    /// The same as `init(rawValue:)`, written out so that it inlines into the parser's hot path.
    @inlinable @inline(__always)
    public init?(wireValue: UInt8) {
        switch wireValue {
        case 0x01: self = .hello
        case 0x02: self = .welcome
        case 0x10: self = .telemetry
        case 0x11: self = .event
        case 0x20: self = .ack
        case 0x21: self = .error
        case 0x30: self = .ping
        case 0x31: self = .pong
        case 0x40: self = .bye
        default: return nil
        }
    }

    /// TELEMETRY and EVENT carry data and are numbered and acknowledged.
    public var isData: Bool { self == .telemetry || self == .event }
}

/// The decoded fixed header of a frame.
public struct FrameHeader: Sendable, Hashable {
    public var type: FrameType
    public var sequence: UInt32
    public var payloadLength: Int

    public init(type: FrameType, sequence: UInt32, payloadLength: Int) {
        self.type = type
        self.sequence = sequence
        self.payloadLength = payloadLength
    }

    /// The whole frame's size on the wire.
    public var frameLength: Int { WireFormat.overhead + payloadLength }
}
