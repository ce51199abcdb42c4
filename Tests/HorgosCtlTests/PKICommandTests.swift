import Foundation
import HorgosPKI
import HorgosServer
import Testing

@Suite("horgosctl pki")
struct PKICommandTests {
    @Test("init, issue server/vehicle/gateway and revoke write the file contract with private keys 0600")
    func pkiLifecycle() async throws {
        let fixture = try CtlFixture(regions: ["AE", "DE"])
        let ca = fixture.root + "/ca"
        let initRun = try await fixture.run(["pki", "init", "--dir", ca])
        #expect(initRun.status == 0, "\(initRun.stderr)")
        #expect(try mode(ca) == 0o700)
        #expect(try mode(ca + "/ca.key") == 0o600)
        #expect(try mode(ca + "/ca.crt") == 0o644)
        let again = try await fixture.run(["pki", "init", "--dir", ca])
        #expect(again.status == 2, "an existing CA is never overwritten")
        #expect(again.stderr.contains("already holds a CA"))

        let server = try await fixture.run(["pki", "issue", "server", "--dir", ca, "--name", "ingest.example.com"])
        #expect(server.status == 0, "\(server.stderr)")
        #expect(try mode(ca + "/server.key") == 0o600)
        let chain = try pemBlocks(ca + "/server.crt")
        #expect(chain.count == 2, "server.crt holds the certificate then the CA")
        #expect(chain.last == (try pemBlocks(ca + "/ca.crt")).first)

        let vin = "WVWZZZ1JZXW000001"
        let vehicle = try await fixture.run([
            "pki", "issue", "vehicle", "--dir", ca, "--vin", vin, "--market", "DE", "--json",
        ])
        #expect(vehicle.status == 0, "\(vehicle.stderr)")
        let report = try vehicle.json()
        #expect(report["certificate"] as? String == ca + "/vehicle-\(vin).crt")
        #expect(try mode(ca + "/vehicle-\(vin).key") == 0o600)
        let identity = try PeerIdentity(derEncoded: try #require(try pemBlocks(ca + "/vehicle-\(vin).crt").first))
        #expect(identity.role == .vehicle)
        #expect(identity.vin == vin)
        #expect(identity.market == "DE")
        #expect(identity.serialNumber == report["serial"] as? String)

        let out = fixture.root + "/issued"
        let gateway = try await fixture.run(
            ["pki", "issue", "gateway", "--dir", ca, "--name", "depot-1", "--market", "AE", "--out", out])
        #expect(gateway.status == 0, "\(gateway.stderr)")
        #expect(try mode(out) == 0o700)
        #expect(try mode(out + "/gateway-depot-1.key") == 0o600)
        let gatewayIdentity = try PeerIdentity(
            derEncoded: try #require(try pemBlocks(out + "/gateway-depot-1.crt").first))
        #expect(gatewayIdentity.role == .gateway)
        #expect(gatewayIdentity.market == "AE")

        // Refusals before anything is written: unconfigured market, bad VIN, no CA.
        let market = try await fixture.run(["pki", "issue", "vehicle", "--dir", ca, "--vin", vin, "--market", "FR"])
        #expect(market.status == 2)
        let badVIN = try await fixture.run(["pki", "issue", "vehicle", "--dir", ca, "--vin", "WVW1", "--market", "DE"])
        #expect(badVIN.status == 2)
        let noCA = try await fixture.run([
            "pki", "issue", "gateway", "--dir", fixture.root + "/empty", "--name", "g",
            "--market", "AE",
        ])
        #expect(noCA.status == 4)
        #expect(noCA.stderr.contains("pki init"))

        // Revocation: both forms land in the deny list the daemon parses, and match the identity.
        let list = fixture.root + "/pki/revoked.txt"
        let serial = try #require(report["serial"] as? String)
        let bySerial = try await fixture.run(["pki", "revoke", "--serial", serial.uppercased(), "--list", list])
        #expect(bySerial.status == 0, "\(bySerial.stderr)")
        #expect(try mode(list) == 0o640)
        let byVIN = try await fixture.run(["pki", "revoke", "--vin", vin, "--list", list, "--json"])
        #expect(try byVIN.json()["entries"] as? Int == 2)
        let repeated = try await fixture.run(["pki", "revoke", "--vin", vin, "--list", list, "--json"])
        #expect(try repeated.json()["added"] as? Bool == false)
        let parsed = try RevocationList(contentsOfFile: list)
        #expect(parsed.serialNumbers == [serial])
        #expect(parsed.vins == [vin])
        #expect(parsed.isRevoked(identity))
        #expect(!parsed.isRevoked(gatewayIdentity))
        let neither = try await fixture.run(["pki", "revoke", "--list", list])
        #expect(neither.status == 2)
        let both = try await fixture.run(["pki", "revoke", "--serial", "ab", "--vin", vin, "--list", list])
        #expect(both.status == 2)
    }

    @Test("issue without --dir uses the daemon's development PKI in <state>/pki")
    func issueFromDevelopmentPKI() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        _ = try FleetPKI.ensureDevelopmentPKI(in: fixture.state + "/pki")
        let run = try await fixture.run(
            ["pki", "issue", "vehicle", "--vin", "LSVCTL00000000042", "--market", "AE", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let path = fixture.state + "/pki/vehicle-LSVCTL00000000042.crt"
        #expect(try PeerIdentity(derEncoded: try #require(try pemBlocks(path).first)).market == "AE")
    }
}

/// The permission bits of a file or directory.
func mode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return try #require(attributes[.posixPermissions] as? Int) & 0o777
}

/// The DER bytes of every PEM block of a file, in order.
func pemBlocks(_ path: String) throws -> [[UInt8]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var blocks: [[UInt8]] = []
    var current: String?
    for line in text.split(separator: "\n") {
        if line.hasPrefix("-----BEGIN") {
            current = ""
        } else if line.hasPrefix("-----END") {
            if let body = current, let data = Data(base64Encoded: body) { blocks.append(Array(data)) }
            current = nil
        } else if current != nil {
            current! += line.trimmingCharacters(in: .whitespaces)
        }
    }
    return blocks
}
