/// The ERROR frame codes of protocol v1 (Proto/PROTOCOL.md section 7).
///
/// Every parse failure and every session violation maps to exactly one of these, so a client can
/// decide from the code alone whether to retry, fix or give up.
public enum ErrorCode: UInt16, Sendable, CaseIterable {
    case badMagic = 0x0101
    case unsupportedVersion = 0x0102
    case unknownFrameType = 0x0103
    case badChecksum = 0x0104
    case frameTooLarge = 0x0105
    case truncatedFrame = 0x0106
    case badPayloadLength = 0x0201
    case recordCountMismatch = 0x0202
    case recordSizeTooSmall = 0x0203
    case invalidVIN = 0x0204
    case emptyBatch = 0x0205
    case tooManyRecords = 0x0206
    case tooManyDTCs = 0x0207
    case invalidFieldValue = 0x0208
    case invalidPayload = 0x0209
    case helloRequired = 0x0301
    case unexpectedFrame = 0x0302
    case sequenceGap = 0x0303
    case windowExceeded = 0x0304
    case vinNotAllowed = 0x0305
    case roleMismatch = 0x0306
    case unknownMarket = 0x0401
    case certificateRevoked = 0x0402
    case identityInvalid = 0x0403
    case serverBusy = 0x0501
    case internalError = 0x0502

    /// The upper-case name used in PROTOCOL.md, logs and metrics labels.
    public var name: String {
        switch self {
        case .badMagic: "BAD_MAGIC"
        case .unsupportedVersion: "UNSUPPORTED_VERSION"
        case .unknownFrameType: "UNKNOWN_FRAME_TYPE"
        case .badChecksum: "BAD_CHECKSUM"
        case .frameTooLarge: "FRAME_TOO_LARGE"
        case .truncatedFrame: "TRUNCATED_FRAME"
        case .badPayloadLength: "BAD_PAYLOAD_LENGTH"
        case .recordCountMismatch: "RECORD_COUNT_MISMATCH"
        case .recordSizeTooSmall: "RECORD_SIZE_TOO_SMALL"
        case .invalidVIN: "INVALID_VIN"
        case .emptyBatch: "EMPTY_BATCH"
        case .tooManyRecords: "TOO_MANY_RECORDS"
        case .tooManyDTCs: "TOO_MANY_DTCS"
        case .invalidFieldValue: "INVALID_FIELD_VALUE"
        case .invalidPayload: "INVALID_PAYLOAD"
        case .helloRequired: "HELLO_REQUIRED"
        case .unexpectedFrame: "UNEXPECTED_FRAME"
        case .sequenceGap: "SEQUENCE_GAP"
        case .windowExceeded: "WINDOW_EXCEEDED"
        case .vinNotAllowed: "VIN_NOT_ALLOWED"
        case .roleMismatch: "ROLE_MISMATCH"
        case .unknownMarket: "UNKNOWN_MARKET"
        case .certificateRevoked: "CERTIFICATE_REVOKED"
        case .identityInvalid: "IDENTITY_INVALID"
        case .serverBusy: "SERVER_BUSY"
        case .internalError: "INTERNAL_ERROR"
        }
    }

    /// Finds a code by its PROTOCOL.md name (used by the vector files).
    public init?(name: String) {
        guard let code = ErrorCode.allCases.first(where: { $0.name == name }) else { return nil }
        self = code
    }
}

/// A frame that cannot be accepted, named for what is wrong with it.
///
/// Raised by the decoder and the payload views; `code` is what goes into the ERROR frame.
public enum FrameError: Error, Sendable, Hashable {
    case badMagic(UInt16)
    case unsupportedVersion(UInt8)
    case unknownFrameType(UInt8)
    case frameTooLarge(length: Int, limit: Int)
    case truncatedFrame(have: Int, need: Int)
    case badChecksum(expected: UInt32, actual: UInt32)
    case badPayloadLength(FrameType, length: Int)
    case recordCountMismatch(count: Int, payloadLength: Int)
    case recordSizeTooSmall(Int)
    case invalidVIN
    case emptyBatch
    case tooManyRecords(count: Int, limit: Int)
    case tooManyDTCs(Int)
    /// A defined field outside its valid range: which field, and in which record (or -1).
    case invalidFieldValue(field: String, record: Int)
    case invalidPayload(String)

    /// The wire ERROR code for this failure.
    public var code: ErrorCode {
        switch self {
        case .badMagic: .badMagic
        case .unsupportedVersion: .unsupportedVersion
        case .unknownFrameType: .unknownFrameType
        case .frameTooLarge: .frameTooLarge
        case .truncatedFrame: .truncatedFrame
        case .badChecksum: .badChecksum
        case .badPayloadLength: .badPayloadLength
        case .recordCountMismatch: .recordCountMismatch
        case .recordSizeTooSmall: .recordSizeTooSmall
        case .invalidVIN: .invalidVIN
        case .emptyBatch: .emptyBatch
        case .tooManyRecords: .tooManyRecords
        case .tooManyDTCs: .tooManyDTCs
        case .invalidFieldValue: .invalidFieldValue
        case .invalidPayload: .invalidPayload
        }
    }
}
