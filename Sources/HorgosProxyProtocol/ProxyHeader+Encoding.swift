import HorgosWire

extension ProxyHeader {
    /// The header's wire bytes, as a load balancer sends them (for tests, the fuzzer's seed corpus
    /// and test clients that stand in for HAProxy). With `checksum`, a CRC-32C TLV is appended and
    /// filled in. Addresses of `.unspecified` give family UNSPEC; `length` is ignored (recomputed).
    public func encoded(checksum: Bool = false) -> [UInt8] {
        var block: [UInt8] = []
        let family: UInt8
        func port(_ value: UInt16?) -> [UInt8] { [UInt8((value ?? 0) >> 8), UInt8((value ?? 0) & 0xFF)] }
        switch (source, destination) {
        case (.inet(let s, let sp), .inet(let d, let dp)):
            family = 1
            block = s + d + port(sp) + port(dp)
        case (.inet6(let s, let sp), .inet6(let d, let dp)):
            family = 2
            block = s + d + port(sp) + port(dp)
        case (.unix(let s), .unix(let d)):
            family = 3
            func padded(_ path: [UInt8]) -> [UInt8] { Array((path + [UInt8](repeating: 0, count: 108)).prefix(108)) }
            block = padded(s) + padded(d)
        default:
            family = 0
        }
        var body = block
        for tlv in tlvs {
            body += [tlv.type, UInt8(tlv.value.count >> 8), UInt8(tlv.value.count & 0xFF)] + tlv.value
        }
        var checksumAt: Int?
        if checksum {
            checksumAt = ProxyHeaderParser.fixedLength + body.count + 3
            body += [ProxyTLV.crc32c, 0, 4, 0, 0, 0, 0]
        }
        var bytes = ProxyHeaderParser.signature
        bytes += [0x20 | command.rawValue, family << 4 | transport.rawValue]
        bytes += [UInt8(body.count >> 8), UInt8(body.count & 0xFF)]
        bytes += body
        if let at = checksumAt {
            let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
            bytes[at] = UInt8(crc >> 24)
            bytes[at + 1] = UInt8((crc >> 16) & 0xFF)
            bytes[at + 2] = UInt8((crc >> 8) & 0xFF)
            bytes[at + 3] = UInt8(crc & 0xFF)
        }
        return bytes
    }
}
