import Foundation
import HorgosPKI
import HorgosTestSupport
import Testing

/// The `openssl` command line tool, the independent peer and CA of the trust tests.
///
/// Never skipped: a missing tool is a failure (CI installs it with `.ci/run`; locally `apt-get install
/// openssl`).
enum OpenSSLTool {
    struct Missing: Error, CustomStringConvertible {
        var description: String { "openssl is not installed (apt-get install openssl); the trust tests need it" }
    }

    static func path() throws -> String {
        for candidate in ["/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw Missing()
    }

    struct Output {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
    }

    /// Runs `openssl arguments...` to completion.
    ///
    /// Output goes to files, not pipes: another test's child process started at the same moment may
    /// inherit a pipe's write end and keep it open, and reading to end-of-file would then wait for it.
    @discardableResult
    static func run(_ arguments: [String], in directory: String? = nil) async throws -> Output {
        let result = try await runProcess(try path(), arguments, in: directory)
        return Output(
            status: result.status, stdout: result.stdout, stderr: String(decoding: result.stderr, as: UTF8.self))
    }

    /// Runs it and fails the test (throws) unless it exits 0.
    @discardableResult
    static func check(_ arguments: [String], in directory: String? = nil) async throws -> Output {
        let output = try await run(arguments, in: directory)
        guard output.status == 0 else {
            throw CommandFailed(arguments: arguments, status: output.status, stderr: output.stderr)
        }
        return output
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var stderr: String
        var description: String { "openssl \(arguments.joined(separator: " ")) exited \(status): \(stderr)" }
    }
}

/// An `openssl ca` directory around a Horgos CA: revokes certificates into its index and writes CRLs with
/// `openssl ca -gencrl`, as an operator would.
struct OpenSSLCA {
    let directory: String
    let authority: FleetPKI

    var caCertificatePath: String { directory + "/ca.crt" }

    init(authority: FleetPKI = testAuthority) throws {
        self.authority = authority
        directory = try makeTemporaryDirectory()
        try (try authority.caCertificatePEM).write(toFile: directory + "/ca.crt", atomically: true, encoding: .utf8)
        try authority.caPrivateKeyPEM.write(toFile: directory + "/ca.key", atomically: true, encoding: .utf8)
        try "".write(toFile: directory + "/index.txt", atomically: true, encoding: .utf8)
        try "01\n".write(toFile: directory + "/crlnumber", atomically: true, encoding: .utf8)
        let configuration = """
            [ ca ]
            default_ca = fleet
            [ fleet ]
            dir = \(directory)
            database = $dir/index.txt
            crlnumber = $dir/crlnumber
            certificate = $dir/ca.crt
            private_key = $dir/ca.key
            default_md = sha256
            default_crl_days = 1

            """
        try configuration.write(toFile: directory + "/ca.cnf", atomically: true, encoding: .utf8)
    }

    /// `openssl ca -revoke` of a certificate.
    func revoke(_ certificate: IssuedCertificate) async throws {
        try await revoke(certificatePEM: try certificate.certificatePEM)
    }

    /// `openssl ca -revoke` of a certificate given as PEM.
    func revoke(_ credential: ClientCredential) async throws {
        try await revoke(certificatePEM: credential.certificatePEM)
    }

    func revoke(certificatePEM: String) async throws {
        let path = directory + "/revoke-\(UUID().uuidString).pem"
        try certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        try await OpenSSLTool.check(["ca", "-config", directory + "/ca.cnf", "-batch", "-revoke", path])
    }

    /// `openssl ca -gencrl` into `name` (PEM), or DER when `der`.
    func generateCRL(name: String = "fleet.crl", der: Bool = false) async throws -> String {
        let pem = directory + "/" + name + ".pem"
        try await OpenSSLTool.check(["ca", "-config", directory + "/ca.cnf", "-batch", "-gencrl", "-out", pem])
        guard der else {
            let target = directory + "/" + name
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.moveItem(atPath: pem, toPath: target)
            return target
        }
        let target = directory + "/" + name
        try await OpenSSLTool.check(["crl", "-in", pem, "-outform", "DER", "-out", target])
        return target
    }
}
