import CHorgosLibcrypto
import Foundation

/// An X.509 certificate revocation list as a CA writes it (`openssl ca -gencrl`, step-ca, Vault), read
/// and signature-checked with the system libcrypto.
///
/// Accepted: PEM (`-----BEGIN X509 CRL-----`, several in one file are all read) or DER. Each CRL must be
/// issued by a certificate of the fleet CA file (issuer name equal to its subject) and its signature must
/// verify with that certificate's public key. Only the revoked serial numbers are used (reason codes,
/// delta CRLs and indirect CRLs are not); lookups are exact serial matches in the form
/// ``RevocationList/normalisedSerial(_:)`` gives.
public struct CertificateRevocationList: Sendable, Hashable {
    /// The file it was read from.
    public var path: String
    /// The issuer's distinguished name, one line (`C=AE, O=Horgos Fleet, CN=...`), for logs.
    public var issuer: String
    /// Revoked serials, lower-case hex without leading zeros.
    public var serialNumbers: Set<String>
    /// `thisUpdate`, seconds since the epoch.
    public var thisUpdate: Int64
    /// `nextUpdate`, seconds since the epoch; nil when the CRL has none (never stale).
    public var nextUpdate: Int64?

    /// True when `nextUpdate` lies before `now`: the CA should have published a newer list.
    ///
    /// Policy (documented in the RUNBOOK): a stale CRL stays in force (its serials stay revoked) and
    /// the daemon warns and sets `horgos_crl_stale` to 1; it never un-revokes by expiring.
    public func isStale(now: Date = Date()) -> Bool {
        guard let nextUpdate else { return false }
        return Int64(now.timeIntervalSince1970) > nextUpdate
    }

    /// Reads every CRL in `path` and checks each against the CA certificates in `caCertificatePath`.
    public static func load(path: String, caCertificatePath: String) throws(CRLError) -> [CertificateRevocationList] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CRLError(.unreadable, "\(path): cannot read: \(error.localizedDescription)")
        }
        let caData: Data
        do {
            caData = try Data(contentsOf: URL(fileURLWithPath: caCertificatePath))
        } catch {
            throw CRLError(.unreadable, "\(caCertificatePath): cannot read the CA: \(error.localizedDescription)")
        }
        return try parse(Array(data), path: path, caPEM: Array(caData))
    }

    /// Parses CRL bytes (PEM or DER) and verifies them against the PEM CA certificates.
    public static func parse(_ bytes: [UInt8], path: String, caPEM: [UInt8]) throws(CRLError)
        -> [CertificateRevocationList]
    {
        let authorities = try LibcryptoObjects.certificates(pem: caPEM)
        defer { authorities.forEach { X509_free($0) } }
        guard !authorities.isEmpty else { throw CRLError(.noIssuer, "the CA file holds no certificate") }
        let crls = try LibcryptoObjects.crls(bytes, path: path)
        defer { crls.forEach { X509_CRL_free($0) } }
        guard !crls.isEmpty else { throw CRLError(.malformed, "\(path): no CRL in the file") }
        var result: [CertificateRevocationList] = []
        for crl in crls {
            result.append(try verified(crl, path: path, authorities: authorities))
        }
        return result
    }

    private static func verified(
        _ crl: OpaquePointer, path: String, authorities: [OpaquePointer]
    ) throws(CRLError) -> CertificateRevocationList {
        let issuerName = X509_CRL_get_issuer(crl)
        let issuer = LibcryptoObjects.text(of: issuerName)
        let candidates = authorities.filter { X509_NAME_cmp(X509_get_subject_name($0), issuerName) == 0 }
        guard !candidates.isEmpty else {
            throw CRLError(.noIssuer, "\(path): issued by \(issuer), which is not a certificate of the fleet CA file")
        }
        let signed = candidates.contains { authority in
            guard let key = X509_get0_pubkey(authority) else { return false }
            return X509_CRL_verify(crl, key) == 1
        }
        ERR_clear_error()
        guard signed else {
            throw CRLError(.badSignature, "\(path): the signature does not verify with \(issuer)'s public key")
        }
        let thisUpdate = horgos_asn1_time_epoch(X509_CRL_get0_lastUpdate(crl))
        guard thisUpdate >= 0 else { throw CRLError(.malformed, "\(path): thisUpdate cannot be read") }
        var nextUpdate: Int64?
        if let next = X509_CRL_get0_nextUpdate(crl) {
            let seconds = horgos_asn1_time_epoch(next)
            guard seconds >= 0 else { throw CRLError(.malformed, "\(path): nextUpdate cannot be read") }
            nextUpdate = seconds
        }
        var serials: Set<String> = []
        let count = horgos_crl_revoked_count(crl)
        for index in 0..<count {
            var length: Int32 = 0
            var negative: Int32 = 0
            guard let bytes = horgos_crl_revoked_serial(crl, index, &length, &negative), negative == 0 else {
                continue  // a negative serial cannot match a fleet certificate (RFC 5280 requires positive)
            }
            serials.insert(Self.hex(UnsafeBufferPointer(start: bytes, count: Int(length))))
        }
        return CertificateRevocationList(
            path: path, issuer: issuer, serialNumbers: serials, thisUpdate: thisUpdate, nextUpdate: nextUpdate)
    }

    static func hex(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return RevocationList.normalisedSerial(String(decoding: text, as: UTF8.self)) ?? "0"
    }
}

/// Why a CRL file was refused (the reload keeps the previous state).
public struct CRLError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Code: String, Hashable, Sendable {
        /// The CRL or CA file cannot be read.
        case unreadable
        /// Neither PEM nor DER of a CRL, or a field cannot be decoded.
        case malformed
        /// No certificate of the fleet CA file issued it.
        case noIssuer
        /// Its signature does not verify with the issuer's public key.
        case badSignature
    }

    /// What kind of problem it is.
    public var code: Code
    /// The path and what is wrong, for the log.
    public var message: String

    /// An error from its parts.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// Thin, owning wrappers over the libcrypto calls (every pointer returned is the caller's to free).
enum LibcryptoObjects {
    /// Every certificate in PEM text.
    static func certificates(pem: [UInt8]) throws(CRLError) -> [OpaquePointer] {
        try withBIO(pem) { bio in
            var result: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { result.append(certificate) }
            ERR_clear_error()  // the loop ends on "no start line"
            return result
        }
    }

    /// Every CRL in PEM text, or the one DER CRL.
    static func crls(_ bytes: [UInt8], path: String) throws(CRLError) -> [OpaquePointer] {
        let isPEM = String(decoding: bytes.prefix(64 * 1024), as: UTF8.self).contains("-----BEGIN X509 CRL-----")
        if isPEM {
            let found = try withBIO(bytes) { bio in
                var result: [OpaquePointer] = []
                while let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) { result.append(crl) }
                return result
            }
            var reason = [CChar](repeating: 0, count: 256)
            horgos_last_error(&reason, reason.count)
            let blocks = String(decoding: bytes, as: UTF8.self).components(separatedBy: "-----BEGIN X509 CRL-----")
                .count - 1
            if found.count != blocks {
                found.forEach { X509_CRL_free($0) }
                throw CRLError(.malformed, "\(path): a PEM CRL block cannot be decoded (\(cText(reason)))")
            }
            return found
        }
        let crl: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509_CRL(nil, &cursor, buffer.count)
        }
        guard let crl else {
            var reason = [CChar](repeating: 0, count: 256)
            horgos_last_error(&reason, reason.count)
            throw CRLError(.malformed, "\(path): neither a PEM nor a DER CRL (\(cText(reason)))")
        }
        return [crl]
    }

    /// `/C=AE/O=.../CN=...` (X509_NAME_oneline).
    static func text(of name: OpaquePointer?) -> String {
        guard let name else { return "?" }
        var buffer = [CChar](repeating: 0, count: 512)
        guard X509_NAME_oneline(name, &buffer, Int32(buffer.count)) != nil else { return "?" }
        return cText(buffer)
    }

    /// The text of a NUL-terminated C string buffer (up to its first NUL).
    static func cText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func withBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T) throws(CRLError) -> T {
        let result: T? = bytes.withUnsafeBytes { raw -> T? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return body(bio)
        }
        guard let result else { throw CRLError(.malformed, "libcrypto cannot allocate a memory BIO") }
        return result
    }
}
