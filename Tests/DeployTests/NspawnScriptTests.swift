import Foundation
import HorgosTestSupport
import Testing

/// Static checks of `Deploy/systemd-nspawn-test.sh` (the real-systemd run itself is in `.ci/run`, it needs
/// root and a container) and of the openssl `horgosctl pki` stand-in it bootstraps the PKI with.
#if os(Linux)
    @Suite("Deployment: the real-systemd script and its PKI helper")
    struct NspawnScriptTests {
        @Test func nspawnScriptParsesHasNoDaemonTODOsAndRunsInCIAfterTheTests() async throws {
            let syntax = try await Script.run(["/bin/bash", "-n", "Deploy/systemd-nspawn-test.sh"])
            #expect(syntax.status == 0, "bash -n: \(syntax.stderr)")
            let script = try String(
                contentsOf: Script.repoRoot.appending(path: "Deploy/systemd-nspawn-test.sh"), encoding: .utf8)
            #expect(!script.contains("TODO(daemon)"))
            #expect(!script.contains("# SKIP"))
            let ci = try String(contentsOf: Script.repoRoot.appending(path: ".ci/run"), encoding: .utf8)
            let lines = ci.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let tests = try #require(lines.firstIndex(of: "Scripts/test.sh"))  // swift test, in three groups
            let nspawn = try #require(lines.firstIndex { $0.hasPrefix("Deploy/systemd-nspawn-test.sh") })
            #expect(nspawn > tests, "the nspawn run uses the debug products Scripts/test.sh built")
            #expect(ci.contains("systemd-container"))
        }

        @Test func opensslPKIStandInMakesACAAndAServerCertificateThatVerify() async throws {
            guard (try? await Script.run(["/usr/bin/openssl", "version"]))?.status == 0 else { return }
            let scratch = try Scratch()
            let caDir = scratch.url.appending(path: "ca")
            let pkiDir = scratch.url.appending(path: "etc/horgos/pki")
            let user = try await Script.run(["/usr/bin/id", "-un"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)

            let result = try await Script.run(
                [
                    "Deploy/pki-bootstrap.sh", "--host", "ingest.example.com", "--ca-dir", caDir.path,
                    "--pki-dir", pkiDir.path, "--service-user", user,
                ],
                environment: ["HORGOSCTL": Script.repoRoot.appending(path: "Deploy/nspawn/horgosctl-pki-openssl.sh").path]
            )

            #expect(result.status == 0, "pki-bootstrap.sh failed:\n\(result.stdout)\n\(result.stderr)")
            let verify = try await Script.run([
                "/usr/bin/openssl", "verify", "-CAfile", pkiDir.appending(path: "ca.crt").path,
                pkiDir.appending(path: "server.crt").path,
            ])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            let names = try await Script.run([
                "/usr/bin/openssl", "x509", "-noout", "-ext", "subjectAltName,extendedKeyUsage", "-in",
                pkiDir.appending(path: "server.crt").path,
            ])
            #expect(names.stdout.contains("DNS:ingest.example.com, DNS:localhost, IP Address:127.0.0.1"))
            #expect(names.stdout.contains("TLS Web Server Authentication"))
            // horgos-sim reads the CA key as P-256 PKCS#8 PEM, and the keys stay private.
            let key = try String(contentsOf: caDir.appending(path: "ca.key"), encoding: .utf8)
            #expect(key.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(try Scratch.mode(of: caDir.appending(path: "ca.key")) == 0o600)
            #expect(try Scratch.mode(of: pkiDir.appending(path: "server.key")) == 0o600)
        }
    }
#endif
