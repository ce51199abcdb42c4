/// A GB/T 32960 frame that cannot be accepted, named for what is wrong with it.
///
/// Raised by the decoder and the data-unit views. `name` is the label of the
/// `horgos_gbt32960_errors_total` metric and of log lines; Proto/GBT32960.md section 6 lists them.
public enum GBT32960Error: Error, Sendable, Hashable {
    /// The first two bytes are neither `##` nor `$$` (the raw word).
    case badStart(UInt16)
    /// The BCC byte differs from the XOR of command through data unit.
    case badBCC(expected: UInt8, actual: UInt8)
    /// A data unit whose declared contents do not fill exactly its length: the command's fixed
    /// body size, or an information block running past the end (`infoType` 0 for the whole unit).
    case lengthMismatch(infoType: UInt8, length: Int)
    /// The buffer ends inside a frame.
    case truncated(have: Int, need: Int)
    /// A command byte outside 0x01–0x08.
    case unknownCommand(UInt8)
    /// An information type that is neither 0x01–0x09 nor custom (0x80–0xFE), or one given twice.
    case unknownInfoType(UInt8)
    /// A response flag outside 0x01, 0x02, 0x03, 0xFE.
    case unknownResponseFlag(UInt8)
    /// An encryption flag outside 0x01, 0x02, 0x03, 0xFE, 0xFF.
    case unknownEncryption(UInt8)
    /// A data unit that is encrypted (RSA, AES-128) or whose flag says abnormal/invalid: Horgos does
    /// not decrypt (the standard leaves key exchange and cipher mode to the parties).
    case encryptedDataUnit(UInt8)
    /// A data-unit time that is not a calendar time (month 13, second 60, ...).
    case badTime
    /// A VIN field that is not 17 VIN characters where a VIN is required.
    case badVIN
    /// A data-unit length above the listener's limit, refused from the header alone.
    case dataUnitTooLarge(length: Int, limit: Int)
    /// 2025 content whose layout Horgos does not read: the commands 0x09 activation, 0x0A activation
    /// response, 0x0B key sync, and the information types 0x03 fuel cell, 0x30 fuel-cell stacks,
    /// 0x31 super capacitors, 0x32 super-capacitor extremes (Proto/GBT32960.md section 2).
    case unsupportedEditionContent
    /// A 2025 realtime or reissue data unit that ends without its signature (no 0xFF starter after
    /// the last information block).
    case signatureMissing
    /// A 2025 signature that cannot be read: an algorithm other than 1 SM2, 2 RSA, 3 ECC, or an r/s
    /// length that does not fill the rest of the data unit exactly.
    case badSignature
    /// A login or logout serial number (登入/登出流水号) outside 1–65531 (GB/T 32960.3-2016
    /// Tables 6, 20, 21, 22): the unit counts them from 1 each day and wraps after 65531.
    case badSerial(UInt16)

    /// The snake_case name used in metrics, logs and the vector files.
    public var name: String {
        switch self {
        case .badStart: "bad_start"
        case .badBCC: "bad_bcc"
        case .lengthMismatch: "length_mismatch"
        case .truncated: "truncated"
        case .unknownCommand: "unknown_command"
        case .unknownInfoType: "unknown_info_type"
        case .unknownResponseFlag: "unknown_response_flag"
        case .unknownEncryption: "unknown_encryption"
        case .encryptedDataUnit: "encrypted_data_unit"
        case .badTime: "bad_time"
        case .badVIN: "bad_vin"
        case .dataUnitTooLarge: "data_unit_too_large"
        case .unsupportedEditionContent: "unsupported_edition_content"
        case .signatureMissing: "signature_missing"
        case .badSignature: "bad_signature"
        case .badSerial: "bad_serial"
        }
    }

    /// Every error name, for metrics that are pre-registered at zero.
    public static let allNames = [
        "bad_start", "bad_bcc", "length_mismatch", "truncated", "unknown_command", "unknown_info_type",
        "unknown_response_flag", "unknown_encryption", "encrypted_data_unit", "bad_time", "bad_vin",
        "data_unit_too_large", "unsupported_edition_content", "signature_missing", "bad_signature", "bad_serial",
    ]

    /// Whether the frame's bytes cannot be delimited (start or length unknown): the stream must be
    /// resynchronised on the next start bytes; no answer can name the frame.
    public var breaksFraming: Bool {
        switch self {
        case .badStart, .unknownCommand, .unknownResponseFlag, .unknownEncryption, .dataUnitTooLarge: true
        default: false
        }
    }
}
