import Foundation
import HorgosPKI
import SwiftASN1
import Testing
import X509

@testable import HorgosServer

/// Runs the built `horgosctl` with `arguments`; returns exit status, stdout and stderr.
private func horgosctl(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("horgosctl").path
    try #require(FileManager.default.isExecutableFile(atPath: executable), "horgosctl not built at \(executable)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    process.waitUntilExit()
    return (
        process.terminationStatus,
        String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
        String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    )
}

@Suite(.serialized) struct HorgosctlPKITests {
    @Test func initCAThenIssueVehicleAndGatewayCertificatesTheDaemonAccepts() throws {
        let directory = try makeTemporaryDirectory()
        let ca = directory + "/ca"
        let initialised = try horgosctl(["pki", "init-ca", "--ca-directory", ca])
        #expect(initialised.status == 0)
        #expect(initialised.out == ca + "/ca.pem\n")
        #expect(try fileMode(ca) == 0o700)
        #expect(try fileMode(ca + "/ca-key.pem") == 0o600)

        let vehicle = try horgosctl([
            "pki", "issue-vehicle", "--ca-directory", ca, "--vin", "lsvau2180n2183294", "--market", "ae",
            "--out", directory + "/units",
        ])
        #expect(vehicle.status == 0)
        let vehiclePath = directory + "/units/LSVAU2180N2183294.pem"
        #expect(vehicle.out == vehiclePath + "\n")
        #expect(try fileMode(directory + "/units/LSVAU2180N2183294-key.pem") == 0o600)
        let authority = try FleetPKI(caCertificatePath: ca + "/ca.pem", caPrivateKeyPath: ca + "/ca-key.pem")
        let vehicleCertificate = try Certificate(pemEncoded: try String(contentsOfFile: vehiclePath, encoding: .utf8))
        #expect(vehicleCertificate.issuer == authority.caCertificate.subject)
        let identity = try PeerIdentity(certificate: vehicleCertificate)
        #expect(identity.role == .vehicle && identity.vin == "LSVAU2180N2183294" && identity.market == "AE")

        let gateway = try horgosctl([
            "pki", "issue-gateway", "--ca-directory", ca, "--name", "kz-port-1", "--market", "KZ",
        ])
        #expect(gateway.status == 0)
        let gatewayCertificate = try Certificate(
            pemEncoded: try String(contentsOfFile: ca + "/kz-port-1.pem", encoding: .utf8))
        let gatewayIdentity = try PeerIdentity(certificate: gatewayCertificate)
        #expect(gatewayIdentity.role == .gateway && gatewayIdentity.name == "kz-port-1")
        #expect(gatewayIdentity.market == "KZ")

        let server = try horgosctl(["pki", "issue-server", "--ca-directory", ca, "--name", "ingest.example.net"])
        #expect(server.status == 0)
        let serverCertificate = try Certificate(
            pemEncoded: try String(contentsOfFile: ca + "/server.pem", encoding: .utf8))
        #expect(
            try serverCertificate.extensions.subjectAlternativeNames?.contains(.dnsName("ingest.example.net")) == true)
    }

    @Test func refusalsHaveMeaningfulExitCodesAndMessages() throws {
        let directory = try makeTemporaryDirectory()
        let ca = directory + "/ca"
        #expect(try horgosctl(["pki", "init-ca", "--ca-directory", ca]).status == 0)

        let again = try horgosctl(["pki", "init-ca", "--ca-directory", ca])
        #expect(again.status == 73)  // never overwrite a CA
        #expect(again.err.hasPrefix("horgosctl: \(ca)/ca.pem exists"))

        let badVIN = try horgosctl(["pki", "issue-vehicle", "--ca-directory", ca, "--vin", "SHORT", "--market", "AE"])
        #expect(badVIN.status == 65)
        #expect(badVIN.err.contains("VIN \"SHORT\""))

        let badName = try horgosctl(["pki", "issue-gateway", "--ca-directory", ca, "--name", "../x", "--market", "AE"])
        #expect(badName.status == 65)

        let noCA = try horgosctl(["pki", "issue-server", "--ca-directory", directory + "/missing"])
        #expect(noCA.status == 73)
    }
}
