import HorgosWire
import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#endif

/// The fleet's certificate authority: issues server, vehicle and gateway certificates (ECDSA P-256).
///
/// Used by the daemon for its development PKI and by `horgosctl pki` for real issuance. Certificate
/// shapes (the contract ``PeerIdentity`` reads back):
/// - CA: CN "Horgos Fleet CA ...", O "Horgos", basicConstraints CA (path length 0), keyCertSign + cRLSign.
/// - server: CN = first name, SANs localhost, 127.0.0.1, ::1 plus the given names, EKU serverAuth.
/// - vehicle: CN = VIN, C = market, OU = "vehicle", URI SAN `urn:vin:<VIN>`, EKU clientAuth.
/// - gateway: CN = gateway name, C = market, OU = "gateway", EKU clientAuth.
/// Serials are 16 random bytes, positive. Limits: one CA level (no intermediates); P-256 only.
public struct FleetPKI: Sendable {
    /// The CA certificate (the trust root the daemon verifies clients against).
    public let caCertificate: Certificate
    /// The CA signing key; keep it off the daemon host in production.
    public let caPrivateKey: P256.Signing.PrivateKey

    /// Wraps an existing CA certificate and its key.
    public init(caCertificate: Certificate, caPrivateKey: P256.Signing.PrivateKey) {
        self.caCertificate = caCertificate
        self.caPrivateKey = caPrivateKey
    }

    /// Loads a CA from PEM text (certificate and PKCS#8 or SEC1 P-256 key).
    public init(caCertificatePEM: String, caPrivateKeyPEM: String) throws(FleetPKIError) {
        do {
            self.caCertificate = try Certificate(pemEncoded: caCertificatePEM)
        } catch {
            throw FleetPKIError(.unreadableCertificate, "CA certificate: \(error)")
        }
        do {
            self.caPrivateKey = try P256.Signing.PrivateKey(pemRepresentation: caPrivateKeyPEM)
        } catch {
            throw FleetPKIError(.unreadablePrivateKey, "CA key (P-256 PEM expected): \(error)")
        }
        guard caPrivateKey.publicKey.rawRepresentation == P256.Signing.PublicKey(caCertificate.publicKey)?
            .rawRepresentation
        else {
            throw FleetPKIError(.keyDoesNotMatchCertificate, "the CA key does not belong to the CA certificate")
        }
    }

    /// Loads a CA from a certificate file and a key file (PEM).
    public init(caCertificatePath: String, caPrivateKeyPath: String) throws(FleetPKIError) {
        try self.init(
            caCertificatePEM: PKIFiles.readText(caCertificatePath),
            caPrivateKeyPEM: PKIFiles.readText(caPrivateKeyPath))
    }

    /// Creates a new self-signed fleet CA with a fresh key.
    ///
    /// - Parameters:
    ///   - commonName: the CA's CN; defaults to "Horgos Fleet CA" plus the creation date.
    ///   - validity: defaults to ten years from now (see ``CertificateValidity/caDefault()``).
    public static func createCertificateAuthority(
        commonName: String? = nil,
        validity: CertificateValidity = .caDefault()
    ) throws(FleetPKIError) -> FleetPKI {
        let key = P256.Signing.PrivateKey()
        let day = ISO8601DateFormatter.string(
            from: validity.notValidBefore, timeZone: .gmt, formatOptions: [.withFullDate])
        let cn = commonName ?? "Horgos Fleet CA \(day)"
        do {
            let name = try DistinguishedName {
                OrganizationName("Horgos")
                CommonName(cn)
            }
            let publicKey = Certificate.PublicKey(key.publicKey)
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: randomSerialNumber(), publicKey: publicKey,
                notValidBefore: validity.notValidBefore, notValidAfter: validity.notValidAfter,
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(key))
            return FleetPKI(caCertificate: certificate, caPrivateKey: key)
        } catch {
            throw FleetPKIError(.issuanceFailed, "CA: \(error)")
        }
    }

    /// Issues the daemon's TLS server certificate.
    ///
    /// - Parameter names: extra DNS names or IP literals beyond localhost, 127.0.0.1 and ::1.
    public func issueServerCertificate(
        names: [String] = [],
        validity: CertificateValidity = .leafDefault()
    ) throws(FleetPKIError) -> IssuedCertificate {
        var sans: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(repeating: 0, count: 15) + [1])))
        for name in names {
            if let ip = IPAddressBytes.parse(name) {
                sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip))))
            } else {
                sans.append(.dnsName(name))
            }
        }
        let cn = names.first ?? "localhost"
        return try issue(
            subject: { () throws -> DistinguishedName in
                try DistinguishedName {
                    OrganizationName("Horgos")
                    CommonName(cn)
                }
            }, usage: .serverAuth, subjectAlternativeNames: sans, validity: validity, what: "server")
    }

    /// Issues a vehicle (TBox) client certificate.
    ///
    /// - Parameters:
    ///   - vin: 17 characters of `[A-HJ-NPR-Z0-9]` (checked: see ``VIN/isValid(_:)``).
    ///   - market: the ISO 3166-1 alpha-2 market the unit is provisioned for (subject C).
    public func issueVehicleCertificate(
        vin: String,
        market: String,
        validity: CertificateValidity = .leafDefault()
    ) throws(FleetPKIError) -> IssuedCertificate {
        guard VIN(vin) != nil else { throw FleetPKIError(.invalidSubject, "VIN \"\(vin)\" is not 17 of [A-HJ-NPR-Z0-9]") }
        return try issueClient(
            unit: FleetPKI.vehicleUnit, commonName: vin, market: market,
            subjectAlternativeNames: [.uniformResourceIdentifier("urn:vin:\(vin)")], validity: validity)
    }

    /// Issues a regional gateway client certificate (any VIN of its one market).
    ///
    /// - Parameters:
    ///   - name: the gateway's name (subject CN), for logs and metrics.
    ///   - market: the one market it serves (subject C).
    public func issueGatewayCertificate(
        name: String,
        market: String,
        validity: CertificateValidity = .leafDefault()
    ) throws(FleetPKIError) -> IssuedCertificate {
        guard !name.isEmpty else { throw FleetPKIError(.invalidSubject, "gateway name is empty") }
        return try issueClient(
            unit: FleetPKI.gatewayUnit, commonName: name, market: market, subjectAlternativeNames: [],
            validity: validity)
    }

    /// A client certificate of the fleet: C=market, O=Horgos, OU=unit (the role), CN.
    private func issueClient(
        unit: String, commonName: String, market: String, subjectAlternativeNames: [GeneralName],
        validity: CertificateValidity
    ) throws(FleetPKIError) -> IssuedCertificate {
        guard FleetPKI.isMarketCode(market) else {
            throw FleetPKIError(.invalidSubject, "market \"\(market)\" is not a two-letter upper-case code")
        }
        return try issue(
            subject: { () throws -> DistinguishedName in
                try DistinguishedName {
                    CountryName(market)
                    OrganizationName("Horgos")
                    OrganizationalUnitName(unit)
                    CommonName(commonName)
                }
            }, usage: .clientAuth, subjectAlternativeNames: subjectAlternativeNames, validity: validity, what: unit)
    }

    private func issue(
        subject makeSubject: () throws -> DistinguishedName,
        usage: ExtendedKeyUsage.Usage,
        subjectAlternativeNames: [GeneralName],
        validity: CertificateValidity,
        what: String
    ) throws(FleetPKIError) -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        do {
            let subject = try makeSubject()
            let publicKey = Certificate.PublicKey(key.publicKey)
            let caKeyIdentifier = try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage])
                SubjectKeyIdentifier(hash: publicKey)
                if let caKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: caKeyIdentifier)
                }
                if !subjectAlternativeNames.isEmpty {
                    SubjectAlternativeNames(subjectAlternativeNames)
                }
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Self.randomSerialNumber(), publicKey: publicKey,
                notValidBefore: validity.notValidBefore, notValidAfter: validity.notValidAfter,
                issuer: caCertificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(caPrivateKey))
            return IssuedCertificate(certificate: certificate, privateKey: key)
        } catch {
            throw FleetPKIError(.issuanceFailed, "\(what): \(error)")
        }
    }

    /// 16 random bytes, positive and minimally DER-encoded (first byte 0x01...0x7F).
    static func randomSerialNumber() -> Certificate.SerialNumber {
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        bytes[0] = UInt8.random(in: 0x01...0x7F)
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// The subject OU of vehicle certificates (PROTOCOL.md section 1).
    public static let vehicleUnit = "vehicle"
    /// The subject OU of gateway certificates.
    public static let gatewayUnit = "gateway"

    /// Two ASCII upper-case letters: the shape of an ISO 3166-1 alpha-2 market code.
    public static func isMarketCode(_ code: String) -> Bool {
        code.utf8.count == 2 && code.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    /// The CA certificate as PEM.
    public var caCertificatePEM: String {
        get throws(FleetPKIError) { try PKIFiles.pem(of: caCertificate) }
    }

    /// The CA key as PKCS#8 PEM.
    public var caPrivateKeyPEM: String { caPrivateKey.pemRepresentation }

    /// Writes the CA certificate (mode 0644) and key (mode 0600); directories are created with mode 0700.
    public func write(certificatePath: String, privateKeyPath: String) throws(FleetPKIError) {
        try PKIFiles.write(try caCertificatePEM, to: certificatePath, mode: 0o644)
        try PKIFiles.write(caPrivateKeyPEM, to: privateKeyPath, mode: 0o600)
    }
}

/// A certificate just issued by ``FleetPKI`` together with its new private key.
public struct IssuedCertificate: Sendable {
    /// The signed certificate.
    public let certificate: Certificate
    /// Its private key (P-256).
    public let privateKey: P256.Signing.PrivateKey

    /// The certificate as PEM.
    public var certificatePEM: String {
        get throws(FleetPKIError) { try PKIFiles.pem(of: certificate) }
    }

    /// The key as PKCS#8 PEM.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// The certificate's DER bytes (what a TLS peer presents).
    public var certificateDER: [UInt8] {
        get throws(FleetPKIError) {
            do {
                var serializer = DER.Serializer()
                try serializer.serialize(certificate)
                return serializer.serializedBytes
            } catch {
                throw FleetPKIError(.issuanceFailed, "DER encoding: \(error)")
            }
        }
    }

    /// Writes the certificate (mode 0644) and key (mode 0600); directories are created with mode 0700.
    public func write(certificatePath: String, privateKeyPath: String) throws(FleetPKIError) {
        try PKIFiles.write(try certificatePEM, to: certificatePath, mode: 0o644)
        try PKIFiles.write(privateKeyPEM, to: privateKeyPath, mode: 0o600)
    }
}

/// The validity window of a certificate to issue.
///
/// Any window is accepted, including one already in the past (to test expiry handling).
public struct CertificateValidity: Sendable, Hashable {
    /// First instant the certificate is valid.
    public var notValidBefore: Date
    /// Last instant the certificate is valid.
    public var notValidAfter: Date

    /// An explicit window.
    public init(notValidBefore: Date, notValidAfter: Date) {
        self.notValidBefore = notValidBefore
        self.notValidAfter = notValidAfter
    }

    /// From one hour ago (clock skew) for `days` days.
    public static func days(_ days: Int, from now: Date = Date()) -> CertificateValidity {
        CertificateValidity(
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(TimeInterval(days) * 86400))
    }

    /// The default for vehicle, gateway and server certificates: 825 days.
    public static func leafDefault(from now: Date = Date()) -> CertificateValidity { .days(825, from: now) }

    /// The default for a CA: ten years.
    public static func caDefault(from now: Date = Date()) -> CertificateValidity { .days(3652, from: now) }
}

/// Why a PKI operation failed.
public typealias FleetPKIError = CodedError<FleetPKIErrorCode>

/// What kind of `FleetPKIError`.
public enum FleetPKIErrorCode: String, Hashable, Sendable {
    /// A certificate file or PEM text could not be parsed.
    case unreadableCertificate
    /// A key file or PEM text could not be parsed as P-256.
    case unreadablePrivateKey
    /// A key and certificate given together do not belong together.
    case keyDoesNotMatchCertificate
    /// A subject value (VIN, market, name) is not acceptable.
    case invalidSubject
    /// Building or signing the certificate failed.
    case issuanceFailed
    /// Reading or writing a file or directory failed.
    case fileSystem
}

/// IP literal to SAN bytes.
enum IPAddressBytes {
    /// 4 bytes for IPv4, 16 for IPv6, nil for anything else (a DNS name).
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
