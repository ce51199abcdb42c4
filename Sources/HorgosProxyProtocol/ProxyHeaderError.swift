/// Why bytes at the start of a connection are not a valid PROXY v2 header.
///
/// Each case is a distinct fault so that logs and the `horgos_proxy_header_rejected_total{reason}`
/// counter say what the sender got wrong; none of them is retried: the connection is closed.
public enum ProxyHeaderError: Error, Sendable, Hashable {
    /// The first 12 bytes are not the v2 signature (a client speaking TLS directly, PROXY v1 text,
    /// or anything else). `offset` is the first byte that differs.
    case badSignature(offset: Int)
    /// The version nibble is not 2.
    case unsupportedVersion(UInt8)
    /// The command nibble is neither LOCAL (0) nor PROXY (1).
    case unknownCommand(UInt8)
    /// The address family nibble is not UNSPEC, INET, INET6 or UNIX, or the transport nibble is not
    /// UNSPEC, STREAM or DGRAM.
    case unknownAddressFamily(UInt8)
    /// The length field is shorter than the address block its family needs.
    case addressBlockTooShort(family: UInt8, length: Int, needed: Int)
    /// The header is longer than the receiver accepts (a bound on buffered bytes).
    case headerTooLong(length: Int, limit: Int)
    /// A TLV runs past the end of the header (`offset` from the start of the header).
    case tlvOverrun(offset: Int)
    /// The CRC-32C TLV does not match the header, or its value is not 4 bytes.
    case badChecksum
    /// A TLV that must be unique or of bounded length breaks its rule (two CRC-32C TLVs, a unique id
    /// over 128 bytes).
    case invalidTLV(type: UInt8)
    /// The connection ended (or timed out) before a whole header arrived; `received` bytes came.
    case truncated(received: Int)

    /// A short, stable name for counters and logs (`bad_signature`, `truncated`...).
    public var reason: String {
        switch self {
        case .badSignature: "bad_signature"
        case .unsupportedVersion: "unsupported_version"
        case .unknownCommand: "unknown_command"
        case .unknownAddressFamily: "unknown_address_family"
        case .addressBlockTooShort: "address_block_too_short"
        case .headerTooLong: "header_too_long"
        case .tlvOverrun: "tlv_overrun"
        case .badChecksum: "bad_checksum"
        case .invalidTLV: "invalid_tlv"
        case .truncated: "truncated"
        }
    }

    /// Every reason, for pre-registering counters.
    public static let allReasons: [String] = [
        "bad_signature", "unsupported_version", "unknown_command", "unknown_address_family",
        "address_block_too_short", "header_too_long", "tlv_overrun", "bad_checksum", "invalid_tlv", "truncated",
    ]
}
