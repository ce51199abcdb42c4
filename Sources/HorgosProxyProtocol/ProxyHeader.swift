/// A parsed PROXY protocol version 2 header: who the load balancer says the client is.
///
/// HAProxy (`send-proxy-v2`), Envoy and the cloud load balancers prepend it to a TCP connection in
/// TLS passthrough, so the server behind them still learns the vehicle's address. The layout is the
/// one of HAProxy's `proxy-protocol.txt`, section 2.2: a 16-byte fixed part (signature, version and
/// command, address family and transport, length), the address block, then type-length-value fields.
public struct ProxyHeader: Sendable, Hashable {
    /// `LOCAL` (the balancer's own health check: use the connection's real addresses) or `PROXY`.
    public var command: ProxyCommand
    /// The transport of the proxied connection (`STREAM` for TCP).
    public var transport: ProxyTransport
    /// The client's address as the balancer saw it; `.unspecified` for `LOCAL` or family `UNSPEC`.
    public var source: ProxyAddress
    /// The address the client connected to on the balancer.
    public var destination: ProxyAddress
    /// The header's TLVs in wire order (authority = SNI, ALPN, unique id, CRC-32C, SSL, vendor...).
    public var tlvs: [ProxyTLV]
    /// Bytes the header occupied on the wire (16 + its length field); the stream continues after them.
    public var length: Int

    /// A header from its parts.
    public init(
        command: ProxyCommand, transport: ProxyTransport, source: ProxyAddress, destination: ProxyAddress,
        tlvs: [ProxyTLV] = [], length: Int
    ) {
        self.command = command
        self.transport = transport
        self.source = source
        self.destination = destination
        self.tlvs = tlvs
        self.length = length
    }

    /// The TLS server name the client asked for (`PP2_TYPE_AUTHORITY`), when the balancer sent it.
    public var authority: String? {
        tlvs.first { $0.type == ProxyTLV.authority }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// The client's IP address as text (`203.0.113.7`, `2001:db8::1`), or nil when the header
    /// carries none (LOCAL, UNSPEC, UNIX): the caller then uses the connection's own peer address.
    public var clientIPAddress: String? {
        guard command == .proxy else { return nil }
        return source.ipAddressText
    }
}

/// The command nibble of byte 13.
public enum ProxyCommand: UInt8, Sendable, Hashable {
    /// The connection was made by the proxy itself (health check); addresses are to be ignored.
    case local = 0x0
    /// The connection is relayed for a client whose addresses follow.
    case proxy = 0x1
}

/// The transport nibble of byte 14.
public enum ProxyTransport: UInt8, Sendable, Hashable {
    case unspecified = 0x0
    case stream = 0x1
    case datagram = 0x2
}

/// One endpoint of the proxied connection.
public enum ProxyAddress: Sendable, Hashable {
    /// No address (LOCAL command or family `AF_UNSPEC`).
    case unspecified
    /// IPv4 address (4 bytes, network order) and port.
    case inet(address: [UInt8], port: UInt16)
    /// IPv6 address (16 bytes, network order) and port.
    case inet6(address: [UInt8], port: UInt16)
    /// A UNIX socket path (up to 108 bytes, NUL-padded on the wire).
    case unix(path: [UInt8])

    /// The IP address as text; nil for `.unspecified` and `.unix`.
    public var ipAddressText: String? {
        switch self {
        case .inet(let address, _):
            return address.map(String.init).joined(separator: ".")
        case .inet6(let address, _):
            return Self.ipv6Text(address)
        case .unspecified, .unix:
            return nil
        }
    }

    /// The port; nil for `.unspecified` and `.unix`.
    public var port: UInt16? {
        switch self {
        case .inet(_, let port), .inet6(_, let port): port
        case .unspecified, .unix: nil
        }
    }

    /// RFC 5952 text: lower-case hex groups, the longest run of two or more zero groups as `::`,
    /// and IPv4-mapped addresses as `::ffff:a.b.c.d`.
    static func ipv6Text(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
            return "::ffff:" + bytes[12..<16].map(String.init).joined(separator: ".")
        }
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let head = hex[0..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }
}

/// One type-length-value field after the address block.
public struct ProxyTLV: Sendable, Hashable {
    /// `PP2_TYPE_ALPN`.
    public static let alpn: UInt8 = 0x01
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (the TLS SNI).
    public static let authority: UInt8 = 0x02
    /// `PP2_TYPE_CRC32C`: a CRC-32C of the whole header with this field's value zeroed.
    public static let crc32c: UInt8 = 0x03
    /// `PP2_TYPE_NOOP`: padding.
    public static let noop: UInt8 = 0x04
    /// `PP2_TYPE_UNIQUE_ID`: an opaque connection id of at most 128 bytes.
    public static let uniqueID: UInt8 = 0x05
    /// `PP2_TYPE_SSL`: TLS facts when the proxy terminated TLS (never here: passthrough).
    public static let ssl: UInt8 = 0x20
    /// `PP2_TYPE_NETNS`.
    public static let netns: UInt8 = 0x30

    public var type: UInt8
    public var value: [UInt8]

    public init(type: UInt8, value: [UInt8]) {
        self.type = type
        self.value = value
    }
}
