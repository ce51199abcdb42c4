import HorgosPKI
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// Builds the mutual-TLS server context of the telemetry listener and reads the peer's identity.
///
/// Policy: TLS 1.3, or TLS 1.2 with ECDHE key exchange and an AEAD cipher only (``tls12CipherSuites``:
/// no CBC, no SHA-1 MAC, no RSA key exchange); the key-exchange groups come from
/// `tls.key_exchange_groups`. A client certificate is required and must chain to the fleet CA, which is
/// the only trust root (the system store is not used); BoringSSL checks it for the TLS client purpose
/// (an EKU without clientAuth fails the handshake) and ``PeerIdentity`` also refuses a leaf without EKU.
/// Limits: swift-nio-ssl 2.37's `.fullVerification` on a server checks the client's IP against the
/// certificate and fails, so `.noHostnameVerification` is used: the chain, validity dates and the
/// clientAuth purpose are still verified by BoringSSL.
public enum TelemetryTLS {
    /// The TLS 1.2 suites allowed (OpenSSL names): ECDHE with AES-GCM or ChaCha20-Poly1305 only.
    /// TLS 1.3's suites are all AEAD and are not configurable in BoringSSL.
    public static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ]

    /// A server context from PEM files (CA, server certificate chain, server key).
    public static func makeServerContext(
        caCertificatePath: String,
        certificateChainPath: String,
        privateKeyPath: String,
        keyExchangeGroups: [KeyExchangeGroup] = KeyExchangeGroup.defaultOrder
    ) throws(TelemetryTLSError) -> NIOSSLContext {
        let roots: [NIOSSLCertificate]
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            roots = try NIOSSLCertificate.fromPEMFile(caCertificatePath)
        } catch {
            throw TelemetryTLSError(.unreadableCA, "\(caCertificatePath): \(error)")
        }
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChainPath)
        } catch {
            throw TelemetryTLSError(.unreadableServerCertificate, "\(certificateChainPath): \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
        } catch {
            throw TelemetryTLSError(.unreadableServerKey, "\(privateKeyPath): \(error)")
        }
        return try makeServerContext(
            trustRoots: roots, certificateChain: chain, privateKey: key, keyExchangeGroups: keyExchangeGroups)
    }

    /// A server context from PEM text (tests and the in-memory development PKI).
    public static func makeServerContext(
        caCertificatePEM: String,
        certificateChainPEM: String,
        privateKeyPEM: String
    ) throws(TelemetryTLSError) -> NIOSSLContext {
        let roots: [NIOSSLCertificate]
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            roots = try NIOSSLCertificate.fromPEMBytes(Array(caCertificatePEM.utf8))
        } catch {
            throw TelemetryTLSError(.unreadableCA, "\(error)")
        }
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
        } catch {
            throw TelemetryTLSError(.unreadableServerCertificate, "\(error)")
        }
        do {
            key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        } catch {
            throw TelemetryTLSError(.unreadableServerKey, "\(error)")
        }
        return try makeServerContext(trustRoots: roots, certificateChain: chain, privateKey: key)
    }

    /// The TLS configuration the listener uses (exposed so tests can assert on the policy).
    public static func serverConfiguration(
        trustRoots: [NIOSSLCertificate],
        certificateChain: [NIOSSLCertificate],
        privateKey: NIOSSLPrivateKey,
        keyExchangeGroups: [KeyExchangeGroup] = KeyExchangeGroup.defaultOrder
    ) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) },
            privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = tls12CipherSuites.joined(separator: ":")
        configuration.curves = keyExchangeGroups.map { NIOTLSCurve(rawValue: $0.codePoint) }
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(trustRoots)
        configuration.sendCANameList = true
        return configuration
    }

    static func makeServerContext(
        trustRoots: [NIOSSLCertificate],
        certificateChain: [NIOSSLCertificate],
        privateKey: NIOSSLPrivateKey,
        keyExchangeGroups: [KeyExchangeGroup] = KeyExchangeGroup.defaultOrder
    ) throws(TelemetryTLSError) -> NIOSSLContext {
        guard !trustRoots.isEmpty else { throw TelemetryTLSError(.unreadableCA, "no certificate in the CA file") }
        guard !certificateChain.isEmpty else {
            throw TelemetryTLSError(.unreadableServerCertificate, "no certificate in the server certificate file")
        }
        do {
            return try NIOSSLContext(
                configuration: serverConfiguration(
                    trustRoots: trustRoots, certificateChain: certificateChain, privateKey: privateKey,
                    keyExchangeGroups: keyExchangeGroups))
        } catch {
            throw TelemetryTLSError(.contextRejected, "\(error)")
        }
    }

    /// The peer's leaf certificate after a completed handshake, parsed with swift-certificates.
    ///
    /// Call on the channel's event loop (NIOSSLHandler is not thread-safe).
    public static func peerCertificate(
        of pipeline: ChannelPipeline.SynchronousOperations
    ) throws(TelemetryTLSError) -> Certificate {
        let peer: NIOSSLCertificate?
        do {
            peer = try pipeline.nioSSL_peerCertificate()
        } catch {
            throw TelemetryTLSError(.noPeerCertificate, "no TLS handler in the pipeline: \(error)")
        }
        guard let peer else { throw TelemetryTLSError(.noPeerCertificate, "the peer presented no certificate") }
        do {
            return try Certificate(derEncoded: try peer.toDERBytes())
        } catch {
            throw TelemetryTLSError(.noPeerCertificate, "peer certificate cannot be parsed: \(error)")
        }
    }
}

/// Why the TLS context could not be built, or the peer certificate not read.
public typealias TelemetryTLSError = CodedError<TelemetryTLSErrorCode>

/// What kind of `TelemetryTLSError`.
public enum TelemetryTLSErrorCode: String, Hashable, Sendable {
    /// The CA file is missing, empty or not PEM.
    case unreadableCA
    /// The server certificate file is missing, empty or not PEM.
    case unreadableServerCertificate
    /// The server key file is missing or not a PEM private key.
    case unreadableServerKey
    /// BoringSSL refused the combination (e.g. key does not match certificate).
    case contextRejected
    /// After the handshake there is no (parseable) peer certificate.
    case noPeerCertificate
}
