import HorgosPKI
import HorgosWire
import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import HorgosServer

/// Signs an arbitrary leaf with the test CA, for subjects FleetPKI would refuse to issue.
func customLeaf(
    subject: DistinguishedName, sans: [GeneralName] = [], usage: [ExtendedKeyUsage.Usage]? = [.clientAuth],
    key: P256.Signing.PrivateKey = P256.Signing.PrivateKey()
) throws -> Certificate {
    let extensions = try Certificate.Extensions {
        if let usage { try ExtendedKeyUsage(usage) }
        if !sans.isEmpty { SubjectAlternativeNames(sans) }
    }
    return try Certificate(
        version: .v3, serialNumber: Certificate.SerialNumber(bytes: [0x00, 0x0A, 0xBC]),
        publicKey: .init(key.publicKey), notValidBefore: Date().addingTimeInterval(-3600),
        notValidAfter: Date().addingTimeInterval(3600),
        issuer: testAuthority.caCertificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: extensions, issuerPrivateKey: .init(testAuthority.caPrivateKey))
}

private func identityError(_ certificate: Certificate) -> PeerIdentityErrorCode? {
    do {
        _ = try PeerIdentity(certificate: certificate)
        return nil
    } catch {
        return error.code
    }
}

@Suite struct PeerIdentityTests {
    @Test func vehicleIdentityFromIssuedCertificateDER() throws {
        let vehicle = try testAuthority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "MX")
        let identity = try PeerIdentity(derEncoded: try vehicle.certificateDER)
        #expect(identity.role == .vehicle)
        #expect(identity.vin == "LSVAU2180N2183294")
        #expect(identity.name == "LSVAU2180N2183294")
        #expect(identity.market == "MX")
        #expect(identity.serialNumber == PeerIdentity.hex(vehicle.certificate.serialNumber.bytes))
        #expect(identity.serialNumber.count >= 31 && identity.serialNumber.count <= 32)
        #expect(!identity.serialNumber.hasPrefix("0"))
        #expect(identity.mayReport(vin: "LSVAU2180N2183294"))
        #expect(!identity.mayReport(vin: "LSVAU2180N2183295"))
    }

    @Test func gatewayIdentityHasNameAndMayReportAnyVIN() throws {
        let gateway = try testAuthority.issueGatewayCertificate(name: "dealer-yard-7", market: "TH")
        let identity = try PeerIdentity(certificate: gateway.certificate)
        #expect(identity.role == .gateway)
        #expect(identity.vin == nil)
        #expect(identity.name == "dealer-yard-7")
        #expect(identity.market == "TH")
        #expect(identity.mayReport(vin: "LSVAU2180N2183295"))
    }

    @Test func uriSANWinsOverCommonName() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AU"); CommonName("tbox-42")
            },
            sans: [.uniformResourceIdentifier("urn:vin:WVWZZZ1JZXW000001")])
        let identity = try PeerIdentity(certificate: cert)
        #expect(identity.vin == "WVWZZZ1JZXW000001")
        #expect(identity.role == .vehicle)  // no OU at all: a vehicle
    }

    @Test func sanAndCommonNameNamingDifferentVINsAreRefused() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AU"); CommonName("WVWZZZ1JZXW000002")
            },
            sans: [.uniformResourceIdentifier("urn:vin:WVWZZZ1JZXW000001")])
        #expect(identityError(cert) == .vinMismatch)
        let same = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AU"); CommonName("WVWZZZ1JZXW000001")
            },
            sans: [.uniformResourceIdentifier("urn:vin:WVWZZZ1JZXW000001")])
        #expect(try PeerIdentity(certificate: same).vin == "WVWZZZ1JZXW000001")
    }

    @Test(arguments: [nil, [ExtendedKeyUsage.Usage.serverAuth]] as [[ExtendedKeyUsage.Usage]?])
    func leafWithoutClientAuthUsageIsRefused(usage: [ExtendedKeyUsage.Usage]?) throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AU"); CommonName("WVWZZZ1JZXW000001")
            }, usage: usage)
        #expect(identityError(cert) == .notForClientAuth)
    }

    @Test func serialHexDropsLeadingZerosLikeTheDenyList() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AU"); CommonName("WVWZZZ1JZXW000001")
            })
        let identity = try PeerIdentity(certificate: cert)
        #expect(identity.serialNumber == "abc")
        #expect(try RevocationList(parsing: "serial:00:0A:BC").isRevoked(identity))
    }

    @Test func missingCountryIsRefused() throws {
        let cert = try customLeaf(subject: try DistinguishedName { CommonName("WVWZZZ1JZXW000001") })
        #expect(identityError(cert) == .missingCountry)
    }

    @Test func malformedCountryIsRefused() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("ae"); CommonName("WVWZZZ1JZXW000001")
            })
        #expect(identityError(cert) == .invalidCountry)
    }

    @Test func missingVINIsRefused() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AE"); OrganizationalUnitName("vehicle")
            })
        #expect(identityError(cert) == .missingVIN)
    }

    @Test(arguments: ["WVWZZZ1JZXW00000", "WVWZZZ1JZXW0000001", "WVWZZZ1JZXW00000I", "wvwzzz1jzxw000001"])
    func invalidVINIsRefused(vin: String) throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AE"); CommonName(vin)
            })
        #expect(identityError(cert) == .invalidVIN)
    }

    @Test func invalidVINInURIIsRefusedEvenWithValidCN() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AE"); CommonName("WVWZZZ1JZXW000001")
            },
            sans: [.uniformResourceIdentifier("urn:vin:NOT-A-VIN")])
        #expect(identityError(cert) == .invalidVIN)
    }

    @Test func unknownRoleIsRefused() throws {
        let cert = try customLeaf(
            subject: try DistinguishedName {
                CountryName("AE"); OrganizationalUnitName("dealer"); CommonName("WVWZZZ1JZXW000001")
            })
        #expect(identityError(cert) == .unknownRole)
    }

    @Test func garbageDERIsMalformed() {
        do {
            _ = try PeerIdentity(derEncoded: [0x30, 0x03, 0x02, 0x01])
            Issue.record("garbage must be refused")
        } catch {
            #expect(error.code == .malformedCertificate)
        }
    }

    @Test func vinCharacterSet() {
        #expect(VIN.isValid("LSVAU2180N2183294"))
        #expect(!VIN.isValid("LSVAU2180N218329Q"))
        #expect(!VIN.isValid("LSVAU2180N2183294 "))
        #expect(!VIN.isValid(""))
    }
}

@Suite struct RevocationListTests {
    let vehicle = PeerIdentity(
        role: .vehicle, vin: "LSVAU2180N2183294", name: "LSVAU2180N2183294", market: "AE",
        serialNumber: "1a2b3c", subject: "CN=LSVAU2180N2183294")

    @Test func serialAndVINEntriesRevoke() throws {
        let list = try RevocationList(
            parsing: """
                # fleet deny list
                serial:00:1A:2B:3C   # stolen unit
                vin:wvwzzz1jzxw000001

                """)
        #expect(list.count == 2)
        #expect(list.isRevoked(vehicle))
        var other = vehicle
        other.serialNumber = "ffff"
        #expect(!list.isRevoked(other))
        other.vin = "WVWZZZ1JZXW000001"
        #expect(list.isRevoked(other))
        let gateway = PeerIdentity(
            role: .gateway, vin: nil, name: "gw", market: "AE", serialNumber: "99",
            subject: "CN=gw")
        #expect(!list.isRevoked(gateway))
    }

    @Test func badLinesAreRefusedWithTheirLineNumber() {
        for (text, line) in [("serial:12\nbogus", 2), ("serial:xyz", 1), ("# c\n\nvin:SHORT", 3), ("mac:00", 1)] {
            do {
                _ = try RevocationList(parsing: text)
                Issue.record("\(text) must be refused")
            } catch {
                #expect(error.line == line)
            }
        }
    }

    @Test func holderReloadsAndKeepsOldListOnError() throws {
        let path = try makeTemporaryDirectory() + "/revoked.txt"
        let holder = try RevocationListHolder(path: path, required: false)  // missing optional file: empty
        #expect(!holder.isRevoked(vehicle))
        try "serial:1A2B3C\n".write(toFile: path, atomically: true, encoding: .utf8)
        try holder.reload()
        #expect(holder.isRevoked(vehicle))
        try "serial:nothex\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RevocationLoadError.self) { try holder.reload() }
        #expect(holder.isRevoked(vehicle))  // previous list still in force
        #expect(throws: RevocationListError.self) { try RevocationListHolder(path: path + ".missing", required: true) }
    }
}
