import HorgosWire

/// What the bytes received so far at the start of a connection amount to.
public enum ProxyHeaderScan: Sendable, Hashable {
    /// A valid prefix of a header; read more. `needed` is the total header length once the fixed
    /// part has arrived (nil before that).
    case needMoreBytes(needed: Int?)
    /// A whole, valid header; the connection's own bytes start at `header.length`.
    case header(ProxyHeader)
}

/// A strict PROXY protocol v2 header parser: pure Swift over raw bytes, no NIO, no Foundation, so
/// it is unit tested with the spec's vectors and fuzzed on its own (`Benchmarks/ProxyFuzz`).
///
/// ```
///  0               12   13   14     16                      16+addr             16+len
///  +----------------+----+----+------+-----------------------+-------------------+
///  | \r\n\r\n\0\r\nQUIT\n | ver|fam | len  | src, dst (+ports)     | TLV TLV ...       |
///  +----------------+----+----+------+-----------------------+-------------------+
/// ```
///
/// Strict means: the signature is checked byte by byte as bytes arrive (a TLS ClientHello is refused
/// on its first byte, never buffered); version 2 only (the v1 text form is refused); the command is
/// LOCAL or PROXY; the family is UNSPEC, INET, INET6 or UNIX and the transport UNSPEC, STREAM or
/// DGRAM; the length covers the family's address block; every TLV lies inside the length; a CRC-32C
/// TLV, if present, is 4 bytes, appears once and matches; the whole header is at most `maxLength`
/// bytes, decided from the fixed part before the rest is buffered.
public struct ProxyHeaderParser: Sendable, Hashable {
    /// The 12-byte v2 signature.
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// Signature, version/command, family/transport and the 16-bit length.
    public static let fixedLength = 16
    /// The default bound: the largest address block (UNIX, 216 bytes) plus room for the TLVs HAProxy
    /// sends (authority up to 255, unique id up to 128, CRC, SSL facts); 1 KiB in all.
    public static let defaultMaxLength = 1024

    /// The largest header accepted, fixed part included (16...65551).
    public var maxLength: Int

    /// A parser accepting headers of at most `maxLength` bytes.
    public init(maxLength: Int = ProxyHeaderParser.defaultMaxLength) {
        self.maxLength = max(Self.fixedLength, maxLength)
    }

    /// Parses the bytes that arrived so far; throws as soon as they cannot start a valid header.
    public func parse(_ bytes: UnsafeRawBufferPointer) throws(ProxyHeaderError) -> ProxyHeaderScan {
        let signatureBytes = min(bytes.count, Self.signature.count)
        for offset in 0..<signatureBytes where bytes[offset] != Self.signature[offset] {
            throw .badSignature(offset: offset)
        }
        guard bytes.count >= 13 else { return .needMoreBytes(needed: nil) }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { throw .unsupportedVersion(versionCommand >> 4) }
        guard let command = ProxyCommand(rawValue: versionCommand & 0x0F) else {
            throw .unknownCommand(versionCommand & 0x0F)
        }
        guard bytes.count >= 14 else { return .needMoreBytes(needed: nil) }
        let familyTransport = bytes[13]
        let family = familyTransport >> 4
        guard family <= 3, let transport = ProxyTransport(rawValue: familyTransport & 0x0F) else {
            throw .unknownAddressFamily(familyTransport)
        }
        guard bytes.count >= Self.fixedLength else { return .needMoreBytes(needed: nil) }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        let total = Self.fixedLength + length
        guard total <= maxLength else { throw .headerTooLong(length: total, limit: maxLength) }
        let addressLength = Self.addressBlockLength(family: family)
        guard length >= addressLength else {
            throw .addressBlockTooShort(family: family, length: length, needed: addressLength)
        }
        guard bytes.count >= total else { return .needMoreBytes(needed: total) }

        let header = UnsafeRawBufferPointer(rebasing: bytes[0..<total])
        var source = ProxyAddress.unspecified
        var destination = ProxyAddress.unspecified
        if command == .proxy {
            (source, destination) = Self.addresses(family: family, block: header[16..<(16 + addressLength)])
        }
        let tlvs = try Self.tlvs(in: header, from: Self.fixedLength + addressLength)
        return .header(
            ProxyHeader(
                command: command, transport: transport, source: source, destination: destination, tlvs: tlvs,
                length: total))
    }

    /// Bytes of the address block for a family nibble: INET 12, INET6 36, UNIX 216, UNSPEC 0.
    static func addressBlockLength(family: UInt8) -> Int {
        switch family {
        case 1: 12
        case 2: 36
        case 3: 216
        default: 0
        }
    }

    private static func addresses(family: UInt8, block: Slice<UnsafeRawBufferPointer>) -> (
        ProxyAddress, ProxyAddress
    ) {
        let bytes = Array(block)
        func port(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        switch family {
        case 1:
            return (
                .inet(address: Array(bytes[0..<4]), port: port(8)),
                .inet(address: Array(bytes[4..<8]), port: port(10))
            )
        case 2:
            return (
                .inet6(address: Array(bytes[0..<16]), port: port(32)),
                .inet6(address: Array(bytes[16..<32]), port: port(34))
            )
        case 3:
            func path(_ range: Range<Int>) -> [UInt8] { Array(bytes[range].prefix { $0 != 0 }) }
            return (.unix(path: path(0..<108)), .unix(path: path(108..<216)))
        default:
            return (.unspecified, .unspecified)
        }
    }

    private static func tlvs(in header: UnsafeRawBufferPointer, from start: Int) throws(ProxyHeaderError)
        -> [ProxyTLV]
    {
        var tlvs: [ProxyTLV] = []
        var offset = start
        var checksumOffset: Int?
        while offset < header.count {
            guard header.count - offset >= 3 else { throw .tlvOverrun(offset: offset) }
            let type = header[offset]
            let length = Int(header[offset + 1]) << 8 | Int(header[offset + 2])
            let valueStart = offset + 3
            guard header.count - valueStart >= length else { throw .tlvOverrun(offset: offset) }
            let value = Array(header[valueStart..<(valueStart + length)])
            switch type {
            case ProxyTLV.crc32c:
                guard length == 4, checksumOffset == nil else {
                    throw length == 4 ? .invalidTLV(type: type) : .badChecksum
                }
                checksumOffset = valueStart
            case ProxyTLV.uniqueID where length > 128:
                throw .invalidTLV(type: type)
            default:
                break
            }
            tlvs.append(ProxyTLV(type: type, value: value))
            offset = valueStart + length
        }
        if let checksumOffset {
            var copy = Array(header)
            let sent = UInt32(copy[checksumOffset]) << 24 | UInt32(copy[checksumOffset + 1]) << 16
                | UInt32(copy[checksumOffset + 2]) << 8 | UInt32(copy[checksumOffset + 3])
            for index in checksumOffset..<(checksumOffset + 4) { copy[index] = 0 }
            let computed = copy.withUnsafeBytes { CRC32C.checksum($0) }
            guard computed == sent else { throw .badChecksum }
        }
        return tlvs
    }
}
