import Foundation
import HorgosProxyProtocol
import Testing

/// Hex text (spaces allowed) to bytes.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

let signatureHex = "0D0A0D0A000D0A515549540A"

func parse(_ bytes: [UInt8], maxLength: Int = ProxyHeaderParser.defaultMaxLength) throws(ProxyHeaderError)
    -> ProxyHeaderScan
{
    let parser = ProxyHeaderParser(maxLength: maxLength)
    var result: Result<ProxyHeaderScan, ProxyHeaderError> = .success(.needMoreBytes(needed: nil))
    bytes.withUnsafeBytes { raw in
        do throws(ProxyHeaderError) {
            result = .success(try parser.parse(raw))
        } catch {
            result = .failure(error)
        }
    }
    return try result.get()
}

func header(_ bytes: [UInt8]) throws -> ProxyHeader {
    guard case .header(let header) = try parse(bytes) else {
        Issue.record("expected a whole header")
        throw ProxyHeaderError.truncated(received: bytes.count)
    }
    return header
}

/// The vectors of the header layout in HAProxy's proxy-protocol.txt, section 2.2 (version 2).
@Suite struct ProxyHeaderParserTests {
    @Test func tcpOverIPv4GivesTheClientAddressAndPorts() throws {
        // PROXY, AF_INET + STREAM, length 12: 192.0.2.1:54321 -> 198.51.100.2:443, then TLS bytes.
        let bytes = hex(signatureHex + "21 11 000C C0000201 C6336402 D431 01BB") + [0x16, 0x03, 0x01]
        let parsed = try header(bytes)
        #expect(parsed.command == .proxy)
        #expect(parsed.transport == .stream)
        #expect(parsed.length == 28)
        #expect(parsed.clientIPAddress == "192.0.2.1")
        #expect(parsed.source.port == 54321)
        #expect(parsed.destination.ipAddressText == "198.51.100.2")
        #expect(parsed.destination.port == 443)
        #expect(parsed.tlvs.isEmpty)
    }

    @Test func tcpOverIPv6FormatsTheAddressAsRFC5952() throws {
        let bytes = hex(
            signatureHex + "21 21 0024"
                + "20010DB8000000000000000000000001" + "20010DB8000000010000000000000002" + "1F90 01BB")
        let parsed = try header(bytes)
        #expect(parsed.clientIPAddress == "2001:db8::1")
        #expect(parsed.destination.ipAddressText == "2001:db8:0:1::2")
        #expect(parsed.source.port == 8080)
        #expect(parsed.length == 52)
    }

    @Test func ipv4MappedIPv6AddressesKeepTheDottedForm() {
        let mapped = hex("00000000000000000000FFFF7F000001")
        #expect(ProxyAddress.inet6(address: mapped, port: 1).ipAddressText == "::ffff:127.0.0.1")
    }

    @Test func localCommandCarriesNoClientAddress() throws {
        // HAProxy's own health checks: LOCAL, AF_UNSPEC, length 0.
        let parsed = try header(hex(signatureHex + "20 00 0000"))
        #expect(parsed.command == .local)
        #expect(parsed.clientIPAddress == nil)
        #expect(parsed.length == 16)
    }

    @Test func localCommandIgnoresAnAddressBlock() throws {
        let parsed = try header(hex(signatureHex + "20 11 000C 7F000001 7F000002 0001 0002"))
        #expect(parsed.command == .local)
        #expect(parsed.source == .unspecified)
        #expect(parsed.clientIPAddress == nil)
    }

    @Test func unixAddressesStopAtTheirNUL() throws {
        var block = [UInt8](repeating: 0, count: 216)
        block.replaceSubrange(0..<4, with: Array("/a/b".utf8))
        let parsed = try header(hex(signatureHex + "21 31 00D8") + block)
        #expect(parsed.source == .unix(path: Array("/a/b".utf8)))
        #expect(parsed.clientIPAddress == nil)
    }

    @Test func authorityTLVGivesTheSNIName() throws {
        let name = Array("de.telemetry.example.com".utf8)
        let bytes = hex(signatureHex + "21 11") + [0, UInt8(12 + 3 + name.count)]
            + hex("7F000001 7F000002 1234 01BB 02 00") + [UInt8(name.count)] + name
        let parsed = try header(bytes)
        #expect(parsed.authority == "de.telemetry.example.com")
        #expect(parsed.tlvs.count == 1)
    }

    @Test func checksumTLVIsVerified() throws {
        let sent = ProxyHeader(
            command: .proxy, transport: .stream, source: .inet(address: [10, 0, 0, 7], port: 40000),
            destination: .inet(address: [10, 0, 0, 1], port: 7443), length: 0)
        var bytes = sent.encoded(checksum: true)
        let parsed = try header(bytes)
        #expect(parsed.clientIPAddress == "10.0.0.7")
        #expect(parsed.tlvs.map(\.type) == [ProxyTLV.crc32c])
        bytes[17] ^= 0x01  // one bit of the address block
        #expect(throws: ProxyHeaderError.badChecksum) { try parse(bytes) }
    }

    @Test func encodingRoundTripsTheParsedHeader() throws {
        let sent = ProxyHeader(
            command: .proxy, transport: .stream,
            source: .inet6(address: hex("20010DB8000000000000000000000042"), port: 1),
            destination: .inet6(address: hex("20010DB8000000000000000000000001"), port: 2),
            tlvs: [ProxyTLV(type: ProxyTLV.uniqueID, value: [1, 2, 3])], length: 0)
        let bytes = sent.encoded()
        var expected = sent
        expected.length = bytes.count
        #expect(try header(bytes) == expected)
    }

    // MARK: Refusals: each fault has its own error

    @Test func aTLSClientHelloIsRefusedOnItsFirstByte() {
        #expect(throws: ProxyHeaderError.badSignature(offset: 0)) { try parse([0x16]) }
    }

    @Test func proxyVersion1TextIsRefused() {
        #expect(throws: ProxyHeaderError.badSignature(offset: 0)) {
            try parse(Array("PROXY TCP4 192.0.2.1 198.51.100.2 54321 443\r\n".utf8))
        }
    }

    @Test func aSignatureWrongInItsLastByteIsRefused() {
        var bytes = hex(signatureHex + "21 11 000C C0000201 C6336402 D431 01BB")
        bytes[11] = 0x0B
        #expect(throws: ProxyHeaderError.badSignature(offset: 11)) { try parse(bytes) }
    }

    @Test func versionOtherThanTwoIsRefused() {
        #expect(throws: ProxyHeaderError.unsupportedVersion(1)) { try parse(hex(signatureHex + "11")) }
        #expect(throws: ProxyHeaderError.unsupportedVersion(3)) { try parse(hex(signatureHex + "31 11 000C")) }
    }

    @Test func unknownCommandIsRefused() {
        #expect(throws: ProxyHeaderError.unknownCommand(2)) { try parse(hex(signatureHex + "22")) }
    }

    @Test func unknownFamilyOrTransportIsRefused() {
        #expect(throws: ProxyHeaderError.unknownAddressFamily(0x41)) { try parse(hex(signatureHex + "21 41")) }
        #expect(throws: ProxyHeaderError.unknownAddressFamily(0x13)) { try parse(hex(signatureHex + "21 13")) }
    }

    @Test func lengthShorterThanTheAddressBlockIsRefused() {
        #expect(throws: ProxyHeaderError.addressBlockTooShort(family: 1, length: 11, needed: 12)) {
            try parse(hex(signatureHex + "21 11 000B"))
        }
        #expect(throws: ProxyHeaderError.addressBlockTooShort(family: 2, length: 12, needed: 36)) {
            try parse(hex(signatureHex + "21 21 000C"))
        }
    }

    @Test func overLongHeaderIsRefusedFromTheFixedPartAlone() {
        #expect(throws: ProxyHeaderError.headerTooLong(length: 16 + 0xFFFF, limit: 1024)) {
            try parse(hex(signatureHex + "21 11 FFFF"))
        }
        #expect(throws: ProxyHeaderError.headerTooLong(length: 16 + 100, limit: 64)) {
            try parse(hex(signatureHex + "21 11 0064"), maxLength: 64)
        }
    }

    @Test func aTLVRunningPastTheHeaderIsRefused() {
        // Length 12 + 4: a TLV header of 3 bytes announcing 2 value bytes, of which 1 is inside.
        #expect(throws: ProxyHeaderError.tlvOverrun(offset: 28)) {
            try parse(hex(signatureHex + "21 11 0010 7F000001 7F000002 0001 0002 02 0002 41"))
        }
        // Two bytes left: not even a TLV header.
        #expect(throws: ProxyHeaderError.tlvOverrun(offset: 28)) {
            try parse(hex(signatureHex + "21 11 000E 7F000001 7F000002 0001 0002 0200"))
        }
    }

    @Test func aChecksumTLVOfTheWrongSizeIsRefused() {
        #expect(throws: ProxyHeaderError.badChecksum) {
            try parse(hex(signatureHex + "21 11 0011 7F000001 7F000002 0001 0002 03 0002 0000"))
        }
    }

    @Test func anOverLongUniqueIDIsRefused() {
        let bytes = hex(signatureHex + "21 11") + [0, 12 + 3 + 129] + hex("7F000001 7F000002 0001 0002 05 0081")
            + [UInt8](repeating: 7, count: 129)
        #expect(throws: ProxyHeaderError.invalidTLV(type: ProxyTLV.uniqueID)) { try parse(bytes) }
    }

    @Test func everyPrefixOfAValidHeaderAsksForMore() throws {
        let bytes = hex(signatureHex + "21 11 000C C0000201 C6336402 D431 01BB")
        for split in 0..<bytes.count {
            let scan = try parse(Array(bytes[0..<split]))
            #expect(scan == .needMoreBytes(needed: split < 16 ? nil : 28), "prefix of \(split) bytes")
        }
    }

    @Test func committedVectorsParseAsTheirNamesSay() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Proto/proxy-vectors")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".bin") }
        #expect(names.count >= 8)
        for name in names {
            let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
            let accepted = (try? parse(bytes)).map { if case .header = $0 { true } else { false } } ?? false
            #expect(accepted == name.hasPrefix("valid_"), "\(name)")
        }
    }
}
