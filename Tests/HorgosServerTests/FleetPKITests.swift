import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import HorgosServer
@testable import HorgosPKI

func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "horgos-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as! NSNumber).intValue
}

/// One CA for the whole test run: key generation is cheap, but sharing keeps failures readable.
let testAuthority: FleetPKI = try! FleetPKI.createCertificateAuthority(commonName: "Horgos Fleet CA test")

@Suite struct FleetPKITests {
    @Test func caIsSelfSignedCertificateAuthorityWithDefaultName() throws {
        let pki = try FleetPKI.createCertificateAuthority()
        let ca = pki.caCertificate
        #expect(ca.subject == ca.issuer)
        #expect(ca.subject.description.contains("CN=Horgos Fleet CA "))
        #expect(try ca.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try ca.extensions.keyUsage?.keyCertSign == true)
        let tenYears = ca.notValidAfter.timeIntervalSince(ca.notValidBefore)
        #expect(tenYears > 3650 * 86400 && tenYears < 3660 * 86400)
        #expect(ca.publicKey.isValidSignature(ca.signature, for: ca))
    }

    @Test func vehicleCertificateCarriesVINMarketRoleAndClientAuth() throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        let cert = vehicle.certificate
        #expect(cert.issuer == testAuthority.caCertificate.subject)
        #expect(testAuthority.caCertificate.publicKey.isValidSignature(cert.signature, for: cert))
        #expect(cert.subject.description.contains("CN=LSVAU2180N2183294"))
        #expect(cert.subject.description.contains("C=AE"))
        #expect(cert.subject.description.contains("OU=vehicle"))
        let sans = try #require(try cert.extensions.subjectAlternativeNames)
        #expect(Array(sans) == [.uniformResourceIdentifier("urn:vin:LSVAU2180N2183294")])
        #expect(try cert.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
        #expect(try cert.extensions.basicConstraints == .notCertificateAuthority)
        let days = cert.notValidAfter.timeIntervalSince(cert.notValidBefore) / 86400
        #expect(days > 825 && days < 826)  // 825 days plus one hour of back-dating
    }

    @Test func gatewayCertificateHasGatewayUnitAndNoVIN() throws {
        let gateway = try testAuthority.issueGatewayCertificate(name: "port-of-horgos-1", market: "KZ")
        let description = gateway.certificate.subject.description
        #expect(description.contains("OU=gateway") && description.contains("CN=port-of-horgos-1"))
        #expect(description.contains("C=KZ"))
        #expect(try gateway.certificate.extensions.subjectAlternativeNames == nil)
        #expect(try gateway.certificate.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
    }

    @Test func serverCertificateCoversLoopbackAndExtraNames() throws {
        let server = try testAuthority.issueServerCertificate(names: ["ingest.example.net", "10.1.2.3"])
        let sans = Array(try #require(try server.certificate.extensions.subjectAlternativeNames))
        #expect(sans.contains(.dnsName("localhost")))
        #expect(sans.contains(.dnsName("ingest.example.net")))
        #expect(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        #expect(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [10, 1, 2, 3]))))
        #expect(
            sans.contains(.ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))))
        )
        #expect(try server.certificate.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
    }

    @Test func serialsAreSixteenRandomPositiveBytes() throws {
        var seen: Set<[UInt8]> = []
        for _ in 0..<50 {
            let serial = Array(FleetPKI.randomSerialNumber().bytes)
            #expect(serial.count == 16)
            #expect(serial[0] >= 0x01 && serial[0] <= 0x7F)
            seen.insert(serial)
        }
        #expect(seen.count == 50)
    }

    @Test func invalidVINOrMarketIsRefusedAtIssuance() {
        #expect(throws: FleetPKIError.self) {
            try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N218329O", market: "AE")  // letter O
        }
        #expect(throws: FleetPKIError.self) {
            try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "ae")
        }
    }

    @Test func expiredCertificateCanBeIssuedForTests() throws {
        let past = Date().addingTimeInterval(-10 * 86400)
        let expired = try testAuthority.issueVehicleCertificate(
            vin: "LSVAU2180N2183294", market: "AE",
            validity: CertificateValidity(notValidBefore: past, notValidAfter: past.addingTimeInterval(86400)))
        #expect(expired.certificate.notValidAfter < Date())
    }

    @Test func pemRoundTripsAndKeyMatchIsChecked() throws {
        let reloaded = try FleetPKI(
            caCertificatePEM: try testAuthority.caCertificatePEM, caPrivateKeyPEM: testAuthority.caPrivateKeyPEM)
        #expect(reloaded.caCertificate == testAuthority.caCertificate)
        let other = try FleetPKI.createCertificateAuthority()
        do {
            _ = try FleetPKI(
                caCertificatePEM: try testAuthority.caCertificatePEM, caPrivateKeyPEM: other.caPrivateKeyPEM)
            Issue.record("a foreign key must be refused")
        } catch {
            #expect(error.code == .keyDoesNotMatchCertificate)
        }
    }

    @Test func filesAreWrittenWithPrivateModes() throws {
        let directory = try makeTemporaryDirectory() + "/nested/pki"
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
        try vehicle.write(certificatePath: directory + "/v.pem", privateKeyPath: directory + "/v-key.pem")
        #expect(try fileMode(directory) == 0o700)
        #expect(try fileMode(directory + "/v-key.pem") == 0o600)
        #expect(try fileMode(directory + "/v.pem") == 0o644)
        let pem = try String(contentsOfFile: directory + "/v.pem", encoding: .utf8)
        #expect(try Certificate(pemEncoded: pem) == vehicle.certificate)
        let key = try String(contentsOfFile: directory + "/v-key.pem", encoding: .utf8)
        #expect(
            try P256.Signing.PrivateKey(pemRepresentation: key).rawRepresentation
                == vehicle.privateKey.rawRepresentation)
    }

    @Test func developmentPKIIsCreatedOnceAndReused() throws {
        let directory = try makeTemporaryDirectory() + "/pki"
        let first = try FleetPKI.ensureDevelopmentPKI(in: directory)
        #expect(first.created)
        #expect(try fileMode(directory) == 0o700)
        #expect(try fileMode(first.paths.caPrivateKey) == 0o600)
        #expect(try fileMode(first.paths.serverKey) == 0o600)
        let serverPEM = try String(contentsOfFile: first.paths.serverCertificate, encoding: .utf8)

        let second = try FleetPKI.ensureDevelopmentPKI(in: directory)
        #expect(!second.created)
        #expect(second.authority.caCertificate == first.authority.caCertificate)
        #expect(try String(contentsOfFile: second.paths.serverCertificate, encoding: .utf8) == serverPEM)

        // A lost server certificate is reissued from the same CA.
        try FileManager.default.removeItem(atPath: first.paths.serverCertificate)
        let third = try FleetPKI.ensureDevelopmentPKI(in: directory)
        #expect(third.created)
        #expect(third.authority.caCertificate == first.authority.caCertificate)
        let reissued = try Certificate(
            pemEncoded: try String(contentsOfFile: third.paths.serverCertificate, encoding: .utf8))
        #expect(reissued.issuer == first.authority.caCertificate.subject)
    }

    /// One layout for every CA directory (PROTOCOL.md section 1.1, `horgosctl pki init`,
    /// Deploy/pki-bootstrap.sh): `ca.crt`, `ca.key`, `server.crt`, `server.key`. A state directory of
    /// an older daemon (`ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem`) keeps its CA: the
    /// files are renamed on the next start.
    @Test func theDevelopmentPKIUsesThePKIInitNamesAndRenamesTheFormerOnes() throws {
        let directory = try makeTemporaryDirectory() + "/pki"
        let made = try FleetPKI.ensureDevelopmentPKI(in: directory)
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: directory))
                == ["ca.crt", "ca.key", "server.crt", "server.key"])
        for (former, current) in made.paths.formerNames {
            try FileManager.default.moveItem(atPath: current, toPath: former)
        }
        #expect(try FleetPKI.authority(inDirectory: directory).caCertificate == made.authority.caCertificate)
        let again = try FleetPKI.ensureDevelopmentPKI(in: directory)
        #expect(!again.created, "the former files were taken over, nothing was made anew")
        #expect(again.authority.caCertificate == made.authority.caCertificate)
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: directory))
                == ["ca.crt", "ca.key", "server.crt", "server.key"])
        #expect(try fileMode(again.paths.caPrivateKey) == 0o600)
        #expect(try FleetPKI.authority(inDirectory: directory).caCertificate == made.authority.caCertificate)
    }
}
