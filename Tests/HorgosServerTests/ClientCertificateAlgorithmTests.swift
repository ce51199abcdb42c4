import Foundation
import HorgosPKI
import HorgosWire
import SwiftASN1
import Testing

@testable import HorgosServer

/// Proto/PROTOCOL.md section 1.2: a client certificate is ECDSA P-256 or P-384, or RSA of 2048 to 4096
/// bits, signed with SHA-256 or stronger. Anything else completes the TLS handshake and is refused
/// with ERROR IDENTITY_INVALID. The certificates are made by the `openssl` tool, as an operator with
/// another CA would make them, not by Horgos's PKI code.
@Suite(.serialized) struct ClientCertificateAlgorithmTests {
    static let vin = "LSVAU2180N2183294"

    /// A CA directory for `openssl`: the test fleet CA (P-256), or a new RSA-2048 CA.
    struct CA {
        let directory: String
        var certificate: String { directory + "/ca.crt" }
        var key: String { directory + "/ca.key" }

        static func fleet() throws -> CA {
            let ca = CA(directory: try makeTemporaryDirectory())
            try (try testAuthority.caCertificatePEM).write(toFile: ca.certificate, atomically: true, encoding: .utf8)
            try testAuthority.caPrivateKeyPEM.write(toFile: ca.key, atomically: true, encoding: .utf8)
            return ca
        }

        static func rsa() async throws -> CA {
            let ca = CA(directory: try makeTemporaryDirectory())
            try await OpenSSLTool.check([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca.key, "-out", ca.certificate,
                "-days", "2", "-subj", "/O=Other/CN=An RSA fleet CA", "-sha256",
            ])
            return ca
        }

        /// A vehicle certificate (C=AE, OU=vehicle, CN=VIN, EKU clientAuth) for a key made with
        /// `genpkey` `keyOptions`, signed with `digest`.
        func issue(_ keyOptions: [String], digest: String) async throws -> ClientCredential {
            let out = try makeTemporaryDirectory()
            try await OpenSSLTool.check(["genpkey"] + keyOptions + ["-out", out + "/leaf.key"])
            try await OpenSSLTool.check([
                "req", "-new", "-key", out + "/leaf.key", "-out", out + "/leaf.csr",
                "-subj", "/C=AE/OU=vehicle/CN=\(ClientCertificateAlgorithmTests.vin)",
            ])
            try "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n".write(
                toFile: out + "/ext.cnf", atomically: true, encoding: .utf8)
            try await OpenSSLTool.check([
                "x509", "-req", "-in", out + "/leaf.csr", "-CA", certificate, "-CAkey", key, "-set_serial", "4242",
                "-days", "2", "-\(digest)", "-extfile", out + "/ext.cnf", "-out", out + "/leaf.crt",
            ])
            return ClientCredential(
                certificatePEM: try String(contentsOfFile: out + "/leaf.crt", encoding: .utf8),
                privateKeyPEM: try String(contentsOfFile: out + "/leaf.key", encoding: .utf8))
        }
    }

    static let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    static let p384 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
    static let p521 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"]
    static let rsa1024 = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]
    static let rsa2048 = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    static let ed25519 = ["-algorithm", "ED25519"]

    /// The identity check's verdict on a certificate: nil accepted, else its error code.
    static func verdict(_ credential: ClientCredential) throws -> PeerIdentityErrorCode? {
        let der = try PEMDocument(pemString: credential.certificatePEM).derBytes
        do {
            _ = try PeerIdentity(derEncoded: der)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func theSupportedKeysAndDigestsAreAccepted() async throws {
        let fleet = try CA.fleet(), rsa = try await CA.rsa()
        #expect(try Self.verdict(await fleet.issue(Self.p256, digest: "sha256")) == nil)
        #expect(try Self.verdict(await fleet.issue(Self.p384, digest: "sha384")) == nil)
        #expect(try Self.verdict(await fleet.issue(Self.rsa2048, digest: "sha256")) == nil)
        #expect(try Self.verdict(await rsa.issue(Self.p256, digest: "sha512")) == nil)
    }

    @Test func shaOneAShortRSAKeyAndOtherKeyKindsAreRefused() async throws {
        let fleet = try CA.fleet(), rsa = try await CA.rsa()
        // What swift-certificates cannot read at all: the same refusal, under another name.
        #expect(try Self.verdict(await fleet.issue(Self.p256, digest: "sha1")) == .malformedCertificate)
        #expect(try Self.verdict(await fleet.issue(Self.rsa1024, digest: "sha256")) == .malformedCertificate)
        // What it reads and Horgos refuses.
        #expect(try Self.verdict(await rsa.issue(Self.rsa2048, digest: "sha1")) == .refusedAlgorithm)
        #expect(try Self.verdict(await fleet.issue(Self.p521, digest: "sha256")) == .refusedAlgorithm)
        #expect(try Self.verdict(await fleet.issue(Self.ed25519, digest: "sha256")) == .refusedAlgorithm)
    }

    /// Over TLS, through the real listener and the admission policy: the handshake completes (the TLS
    /// library checks the chain only), then ERROR IDENTITY_INVALID and close; never a WELCOME.
    @Test(arguments: ["sha1 p256", "sha256 rsa1024"])
    func aRefusedAlgorithmGetsIdentityInvalidAfterTheHandshake(kind: String) async throws {
        let fleet = try CA.fleet()
        let credential =
            kind == "sha1 p256"
            ? try await fleet.issue(Self.p256, digest: "sha1") : try await fleet.issue(Self.rsa1024, digest: "sha256")
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        // The client side allows what its own OpenSSL would refuse to present by default.
        let client = try SClient(port: port, credential: credential, options: ["-cipher", "DEFAULT@SECLEVEL=0"])
        defer { client.stop() }
        let event = try await harness.nextEvent()
        guard case .refused(let code) = event else {
            Issue.record("\(kind): expected a refusal after the handshake, got \(event)")
            Issue.record("s_client: \(client.stderr.withLock { $0 })")
            return
        }
        #expect(code == .identityInvalid)
        #expect(try await client.waitFor { if case .error = $0 { true } else { false } })
        #expect(client.errorCode == .identityInvalid)
        #expect(try await client.exited())
        #expect(!client.gotWelcome)
    }
}
