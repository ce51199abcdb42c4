import Crypto
import HorgosPKI
import HorgosWire
import SwiftASN1
import X509

/// Who is on the other end of a telemetry connection, read from its (already chain-verified) certificate.
///
/// Rules (the shapes ``FleetPKI`` issues):
/// - subject OU "gateway": a gateway; its subject CN is its name; it may send any VIN of its market.
/// - subject OU "vehicle" or no OU: a vehicle; the VIN is the `urn:vin:` URI SAN if present, else the CN,
///   and must be 17 characters of `[A-HJ-NPR-Z0-9]`. When the SAN and the CN are both VINs they must be
///   the same VIN (``PeerIdentityErrorCode/vinMismatch``); a CN that is not a VIN (`tbox-42`) is a label.
/// - any other OU: refused (``PeerIdentityErrorCode/unknownRole``).
/// - the extended key usage must include clientAuth (``PeerIdentityErrorCode/notForClientAuth``): a
///   leaf without any EKU, or with serverAuth only, is not a fleet client certificate.
/// - subject C (ISO 3166-1 alpha-2) is the market for both; it must be present and two upper-case letters.
/// - the key is ECDSA P-256 or P-384, or RSA of 2048 to 4096 bits, and the issuer signed it with ECDSA or
///   RSA over SHA-256, SHA-384 or SHA-512 (``PeerIdentityErrorCode/refusedAlgorithm``: SHA-1, MD5, a
///   short RSA key, P-521 or Ed25519; Proto/PROTOCOL.md section 1.2).
/// This type does not verify signatures or validity dates: the TLS handshake did that.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// What kind of client the certificate names.
    public enum Role: String, Sendable, Hashable {
        /// One telematics unit; may send frames for its own VIN only.
        case vehicle
        /// A regional gateway; may send frames for any VIN of its market.
        case gateway
    }

    /// Vehicle or gateway.
    public var role: Role
    /// The vehicle's VIN; nil for a gateway.
    public var vin: String?
    /// The gateway's name (its CN), or the VIN for a vehicle.
    public var name: String
    /// The market (subject C), which decides the shard.
    public var market: String
    /// The certificate serial number as lower-case hex without leading zeros (the deny list's form).
    public var serialNumber: String
    /// The subject distinguished name as text, for logs.
    public var subject: String

    /// An identity from its parts (tests, and callers that already know who it is).
    public init(role: Role, vin: String?, name: String, market: String, serialNumber: String, subject: String) {
        self.role = role
        self.vin = vin
        self.name = name
        self.market = market
        self.serialNumber = serialNumber
        self.subject = subject
    }

    /// Reads the identity from a parsed certificate.
    public init(certificate: Certificate) throws(PeerIdentityError) {
        try Self.checkAlgorithms(certificate)
        let subject = certificate.subject
        self.subject = subject.description
        self.serialNumber = PeerIdentity.hex(certificate.serialNumber.bytes)

        let countries = Self.attributes(subject, ASN1ObjectIdentifier.RDNAttributeType.countryName)
        guard let country = countries.first else {
            throw PeerIdentityError(.missingCountry, "certificate subject \(subject) has no C (market)")
        }
        guard countries.count == 1, Region.isValidCode(country) else {
            throw PeerIdentityError(.invalidCountry, "subject C \"\(country)\" is not one two-letter market code")
        }
        self.market = country

        let usage: ExtendedKeyUsage?
        do {
            usage = try certificate.extensions.extendedKeyUsage
        } catch {
            throw PeerIdentityError(.malformedCertificate, "extendedKeyUsage cannot be parsed: \(error)")
        }
        guard let usage, usage.contains(.clientAuth) else {
            throw PeerIdentityError(
                .notForClientAuth, "the certificate's extended key usage does not include clientAuth")
        }

        let units = Self.attributes(subject, ASN1ObjectIdentifier.RDNAttributeType.organizationalUnitName)
        let commonName = Self.attributes(subject, ASN1ObjectIdentifier.RDNAttributeType.commonName).first
        if units.contains(Role.gateway.rawValue) {
            guard units.count == 1, let commonName, !commonName.isEmpty else {
                throw PeerIdentityError(.unknownRole, "a gateway certificate needs one OU and a CN (its name)")
            }
            self.role = .gateway
            self.vin = nil
            self.name = commonName
            return
        }
        guard units.allSatisfy({ $0 == Role.vehicle.rawValue }) else {
            throw PeerIdentityError(.unknownRole, "subject OU \(units) is neither vehicle nor gateway")
        }
        self.role = .vehicle
        let uriVINs: [String]
        do {
            uriVINs = (try certificate.extensions.subjectAlternativeNames ?? SubjectAlternativeNames([]))
                .compactMap { name -> String? in
                    guard case .uniformResourceIdentifier(let uri) = name, uri.lowercased().hasPrefix("urn:vin:")
                    else { return nil }
                    return String(uri.dropFirst("urn:vin:".count))
                }
        } catch {
            throw PeerIdentityError(.malformedCertificate, "subjectAltName cannot be parsed: \(error)")
        }
        guard uriVINs.count <= 1 else {
            throw PeerIdentityError(.invalidVIN, "more than one urn:vin: name: \(uriVINs)")
        }
        if let san = uriVINs.first, let commonName, VIN.isValid(commonName), VIN.isValid(san), san != commonName {
            throw PeerIdentityError(
                .vinMismatch, "the urn:vin: name \(san) and the CN \(commonName) are different VINs")
        }
        guard let vin = uriVINs.first ?? commonName, !vin.isEmpty else {
            throw PeerIdentityError(.missingVIN, "no urn:vin: subject alternative name and no CN")
        }
        guard VIN.isValid(vin) else {
            throw PeerIdentityError(.invalidVIN, "\"\(vin)\" is not 17 characters of [A-HJ-NPR-Z0-9]")
        }
        self.vin = vin
        self.name = vin
    }

    /// The signature algorithms a fleet client certificate may be signed with.
    static let acceptedSignatures: Set<Certificate.SignatureAlgorithm> = [
        .ecdsaWithSHA256, .ecdsaWithSHA384, .ecdsaWithSHA512, .sha256WithRSAEncryption, .sha384WithRSAEncryption,
        .sha512WithRSAEncryption,
    ]

    /// Refuses what Proto/PROTOCOL.md section 1.2 does not support. (A certificate whose key or
    /// signature swift-certificates cannot read at all, such as RSA-1024 or MD5, never gets here: it is
    /// `malformedCertificate`, the same ERROR.)
    static func checkAlgorithms(_ certificate: Certificate) throws(PeerIdentityError) {
        guard acceptedSignatures.contains(certificate.signatureAlgorithm) else {
            throw PeerIdentityError(
                .refusedAlgorithm, "signed with \(certificate.signatureAlgorithm): SHA-256 or stronger is required")
        }
        let key = certificate.publicKey
        if P256.Signing.PublicKey(key) != nil || P384.Signing.PublicKey(key) != nil { return }
        let other = P521.Signing.PublicKey(key) != nil || Curve25519.Signing.PublicKey(key) != nil
        guard !other, let bits = rsaModulusBits(key), (2048...4096).contains(bits) else {
            throw PeerIdentityError(
                .refusedAlgorithm, "key \(key): ECDSA P-256, P-384 or RSA of 2048 to 4096 bits is required")
        }
    }

    /// The modulus size of an RSA key: its key bits are an RSAPublicKey (RFC 8017 A.1.1); nil when
    /// they are not.
    static func rsaModulusBits(_ key: Certificate.PublicKey) -> Int? {
        do {
            let node = try DER.parse(key.subjectPublicKeyInfoBytes)
            return try DER.sequence(node, identifier: .sequence) { fields -> Int in
                var modulus = try ArraySlice<UInt8>(derEncoded: &fields)
                _ = try ArraySlice<UInt8>(derEncoded: &fields)  // the public exponent
                while modulus.first == 0 { modulus = modulus.dropFirst() }
                guard let top = modulus.first else { return 0 }
                return modulus.count * 8 - top.leadingZeroBitCount
            }
        } catch {
            return nil
        }
    }

    /// Reads the identity from certificate DER bytes (what NIO-SSL hands over after the handshake).
    public init(derEncoded bytes: [UInt8]) throws(PeerIdentityError) {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: bytes)
        } catch {
            throw PeerIdentityError(.malformedCertificate, "certificate DER cannot be parsed: \(error)")
        }
        try self.init(certificate: certificate)
    }

    /// `vehicle VIN (market AE, serial 0a1b...)` for logs.
    public var description: String {
        "\(role.rawValue) \(name) (market \(market), serial \(serialNumber))"
    }

    /// True when this peer may send frames for `vin`: a vehicle only its own, a gateway any (its market is
    /// enforced by routing to its market's shard).
    public func mayReport(vin other: String) -> Bool {
        switch role {
        case .vehicle: vin == other
        case .gateway: true
        }
    }

    static func hex<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let significant = bytes.drop(while: { $0 == 0 })
        if significant.isEmpty { return "0" }
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in significant {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        if text.first == UInt8(ascii: "0") { text.removeFirst() }  // no leading zero digit either
        return String(decoding: text, as: UTF8.self)
    }

    private static func attributes(_ name: DistinguishedName, _ type: ASN1ObjectIdentifier) -> [String] {
        name.flatMap { $0 }.filter { $0.type == type }.compactMap { String($0.value) }
    }
}

/// Why a certificate does not name an acceptable fleet identity.
public typealias PeerIdentityError = CodedError<PeerIdentityErrorCode>

/// What kind of `PeerIdentityError` (its raw value is also the `reason` label of the refusal metric).
public enum PeerIdentityErrorCode: String, Hashable, Sendable {
    /// The subject has no C attribute, so the market is unknown.
    case missingCountry
    /// The subject C is not a single two-letter upper-case code.
    case invalidCountry
    /// A vehicle certificate has neither a `urn:vin:` SAN nor a CN.
    case missingVIN
    /// The VIN is not 17 characters of `[A-HJ-NPR-Z0-9]`, or several disagree.
    case invalidVIN
    /// The OU names a role other than vehicle or gateway.
    case unknownRole
    /// The certificate bytes cannot be parsed.
    case malformedCertificate
    /// The extended key usage is absent or lacks clientAuth.
    case notForClientAuth
    /// The `urn:vin:` SAN and the CN are both VINs, and differ.
    case vinMismatch
    /// The key or the signature algorithm is not one the fleet accepts (SHA-1, RSA under 2048 bits, ...).
    case refusedAlgorithm
}
