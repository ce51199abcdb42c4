import Foundation
import HorgosPKI
import HorgosServer
import Testing

/// `--state DIR` moves the development PKI with it: `pki issue` and `pki revoke` use `DIR/pki`, as
/// their help says, not the configuration's state directory (issue 15).
@Suite("horgosctl pki --state")
struct PKIStateDirectoryTests {
    @Test("pki issue vehicle --state DIR finds the development CA in DIR/pki and writes there")
    func issueUsesTheStateDirectoryOfTheFlag() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let other = fixture.root + "/other-state"
        _ = try FleetPKI.ensureDevelopmentPKI(in: other + "/pki")
        let vin = "LSVAU2180N2183294"
        let run = try await fixture.run(["pki", "issue", "vehicle", "--state", other, "--vin", vin, "--market", "AE"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: other + "/pki/vehicle-\(vin).crt"))
        #expect(!FileManager.default.fileExists(atPath: fixture.state + "/pki"), "the configured state is untouched")

        let revoke = try await fixture.run(["pki", "revoke", "--state", other, "--vin", vin])
        #expect(revoke.status == 0, "\(revoke.stderr)")
        let list = try String(contentsOfFile: other + "/pki/revoked.txt", encoding: .utf8)
        #expect(list.contains("vin:\(vin)"))
    }

    @Test("without a CA in DIR/pki the refusal names DIR/pki (exit 4)")
    func aMissingCANamesTheStateDirectoryOfTheFlag() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let empty = fixture.root + "/empty-state"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let run = try await fixture.run([
            "pki", "issue", "vehicle", "--state", empty, "--vin", "LSVAU2180N2183294",
            "--market", "AE",
        ])
        #expect(run.status == 4)
        #expect(run.stderr.contains(empty + "/pki"), "\(run.stderr)")
    }
}
