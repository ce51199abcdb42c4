import CHorgosLibcrypto
import Foundation
import HorgosConfig
import HorgosPKI
import NIOCore
import NIOSSL
import HorgosTestSupport
import Testing

@testable import HorgosServer

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct CertificateRevocationListTests {
    @Test func crlWrittenByOpensslCaRevokesItsSerialsInPEMAndDER() async throws {
        let ca = try OpenSSLCA()
        let revoked = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let kept = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183295", market: "AE")
        try await ca.revoke(revoked)
        for der in [false, true] {
            let path = try await ca.generateCRL(name: der ? "fleet.der" : "fleet.pem", der: der)
            let crls = try CertificateRevocationList.load(path: path, caCertificatePath: ca.caCertificatePath)
            #expect(crls.count == 1)
            let state = Revocations(crls: crls)
            let revokedIdentity = try PeerIdentity(certificate: revoked.certificate)
            let keptIdentity = try PeerIdentity(certificate: kept.certificate)
            #expect(state.isRevoked(serialNumber: revokedIdentity.serialNumber, vin: revokedIdentity.vin))
            #expect(!state.isRevoked(serialNumber: keptIdentity.serialNumber, vin: keptIdentity.vin))
            #expect(crls[0].nextUpdate != nil)
            #expect(!crls[0].isStale())
        }
    }

    @Test func crlPastItsNextUpdateIsStaleButStillRevokes() async throws {
        let ca = try OpenSSLCA()
        let revoked = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        try await ca.revoke(revoked)
        let crls = try CertificateRevocationList.load(
            path: try await ca.generateCRL(), caCertificatePath: ca.caCertificatePath)
        let later = Date().addingTimeInterval(3 * 86400)  // default_crl_days = 1
        let state = Revocations(crls: crls)
        #expect(state.staleCRLs(now: later).count == 1)
        #expect(state.staleCRLs().isEmpty)
        #expect(state.isRevoked(serialNumber: try PeerIdentity(certificate: revoked.certificate).serialNumber, vin: nil))
    }

    @Test func garbageIsNotACRL() async throws {
        let ca = try OpenSSLCA()
        let path = ca.directory + "/garbage.crl"
        try "this is not a CRL\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: CRLError.self) { try CertificateRevocationList.load(path: path, caCertificatePath: ca.caCertificatePath) }
        do {
            _ = try CertificateRevocationList.load(path: path, caCertificatePath: ca.caCertificatePath)
        } catch {
            #expect(error.code == .malformed)
        }
        let pem = ca.directory + "/cut.crl"
        let good = try String(contentsOfFile: try await ca.generateCRL(), encoding: .utf8)
        try String(good.prefix(good.count / 2)).write(toFile: pem, atomically: true, encoding: .utf8)
        #expect(throws: CRLError.self) { try CertificateRevocationList.load(path: pem, caCertificatePath: ca.caCertificatePath) }
    }

    @Test func crlOfAnotherCAOrWithAForgedSignatureIsRefused() async throws {
        let other = try OpenSSLCA(authority: try FleetPKI.createCertificateAuthority(commonName: "Some Other CA"))
        let fleet = try OpenSSLCA()
        do {
            _ = try CertificateRevocationList.load(
                path: try await other.generateCRL(), caCertificatePath: fleet.caCertificatePath)
            Issue.record("a CRL of another CA was accepted")
        } catch let error as CRLError {
            #expect(error.code == .noIssuer)
        }
        // Same issuer name, other key: the signature does not verify.
        let impostor = try OpenSSLCA(authority: try FleetPKI.createCertificateAuthority(commonName: "Horgos Fleet CA test"))
        do {
            _ = try CertificateRevocationList.load(
                path: try await impostor.generateCRL(), caCertificatePath: fleet.caCertificatePath)
            Issue.record("a CRL signed by another key was accepted")
        } catch let error as CRLError {
            #expect(error.code == .badSignature)
        }
    }

    @Test func emptyOrTruncatedDenyListFileIsRefused() async throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/revoked.txt"
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RevocationListError.self) { try RevocationList(contentsOfFile: path) }
        try "serial:0a1b\nvin:LSVAU2180N218".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RevocationListError.self) { try RevocationList(contentsOfFile: path) }
        try "serial:0a1b\nserial:0a".write(toFile: path, atomically: true, encoding: .utf8)  // cut inside a serial
        #expect(throws: RevocationListError.self) { try RevocationList(contentsOfFile: path) }
        try "# nothing revoked\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try RevocationList(contentsOfFile: path).count == 0)
    }

    /// NIO-SSL's BoringSSL and the system libcrypto in one binary: BoringSSL's symbols carry the
    /// CNIOBoringSSL_ prefix, so the unprefixed OpenSSL names resolve to libcrypto.so.3, and both work.
    @Test func boringSSLAndSystemLibcryptoWorkInOneBinary() async throws {
        // libcrypto answers as OpenSSL 3 and parses a CRL.
        #expect(String(cString: OpenSSL_version(OPENSSL_VERSION)).hasPrefix("OpenSSL 3"))
        let ca = try OpenSSLCA()
        let crl = try await ca.generateCRL()
        #expect(try CertificateRevocationList.load(path: crl, caCertificatePath: ca.caCertificatePath).count == 1)
        // In this binary the unprefixed OpenSSL name is undefined (bound to the system libcrypto.so.3,
        // which is mapped), while the BoringSSL copies define only their prefixed names.
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/nm"), "nm (binutils) is needed")
        let symbols = try await shell("/usr/bin/nm '\(binary)' | grep 'X509_CRL_verify$'")
        let lines = symbols.split(separator: "\n").map { $0.split(separator: " ").suffix(2).joined(separator: " ") }
        #expect(lines.contains("U X509_CRL_verify"))
        #expect(!lines.contains("T X509_CRL_verify"))
        #expect(lines.contains("T CNIOBoringSSL_X509_CRL_verify"))
        let maps = try await shell("cat /proc/\(getpid())/maps")  // procfs: read by a reader that streams
        #expect(maps.contains("libcrypto.so.3"))
        // BoringSSL still does TLS: a full mutual-TLS handshake through the listener.
        let harness = try TLSHarness()
        let (port, task) = try await harness.start()
        defer { task.cancel() }
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let client = try await TLSHarness.connect(port: port, credential: vehicle)
        guard case .session = try await harness.nextEvent() else {
            Issue.record("expected a session over BoringSSL")
            return
        }
        try await client.close()
    }
}

/// Runs a shell command line; its standard output.
func shell(_ command: String) async throws -> String {
    try await runProcess("/bin/sh", ["-c", command]).standardOutput
}
