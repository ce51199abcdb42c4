import Foundation
import HorgosTestSupport
import Testing

/// Checks of what ships in `systemd/` and `Deploy/`, run against the scripts themselves.
///
/// None of these tests needs a working `horgosd`: the unit checks are static, and `install.sh` and
/// `pki-bootstrap.sh` run on stand-in executables the tests create. The checks that need the real
/// daemon under a real systemd live in `Deploy/systemd-nspawn-test.sh`.
///
/// Linux only: they need `systemd-analyze`, `systemd-sysusers` and `systemd-tmpfiles`.
#if os(Linux)
    @Suite("Deployment: units, install.sh, pki-bootstrap.sh")
    struct DeployChecksTests {
        @Test func shippedUnitsVerifyCleanlyWithExposureAtMostOnePointFive() async throws {
            let result = try await Script.run(["Deploy/check-units.sh"])
            #expect(result.status == 0, "check-units.sh failed:\n\(result.stdout)\n\(result.stderr)")
            let exposure = try #require(Script.exposure(in: result.stdout), "no exposure in: \(result.stdout)")
            #expect(exposure <= 1.5)
        }

        @Test func checkUnitsRejectsAUnitThatDropsTheNotifySocketFamilyOrHasAnUnknownKey() async throws {
            let scratch = try Scratch()
            let units = scratch.url.appending(path: "units")
            try FileManager.default.copyItem(at: Script.repoRoot.appending(path: "systemd"), to: units)
            let serviceURL = units.appending(path: "horgosd.service")
            var service = try String(contentsOf: serviceURL, encoding: .utf8)
            service = service.replacingOccurrences(
                of: "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                with: "RestrictAddressFamilies=AF_INET AF_INET6\nNotAKnownKey=1"
            )
            try service.write(to: serviceURL, atomically: true, encoding: .utf8)

            let result = try await Script.run(["Deploy/check-units.sh", "--unit-dir", units.path])

            #expect(result.status != 0)
            #expect(result.stderr.contains("lacks AF_UNIX"))
            #expect(result.stderr.contains("Unknown key 'NotAKnownKey'"))
        }

        @Test(arguments: [
            InstallLayout(prefix: "/usr/local", unitDir: "etc/systemd/system", snippetRoot: "etc"),
            InstallLayout(prefix: "/usr", unitDir: "usr/lib/systemd/system", snippetRoot: "usr/lib"),
        ])
        func installIntoDestdirWritesTheExpectedTreeAndNothingElse(layout: InstallLayout) async throws {
            let scratch = try Scratch()
            let destdir = scratch.url.appending(path: "root")
            let prefix = String(layout.prefix.dropFirst())  // relative to DESTDIR
            let expected: [String: Int] = [
                "\(prefix)/bin/horgosd": 0o755,
                "\(prefix)/bin/horgosctl": 0o755,
                "\(prefix)/bin/horgos-sim": 0o755,
                "\(layout.unitDir)/horgosd.service": 0o644,
                "\(layout.unitDir)/horgosd.socket": 0o644,
                "\(layout.unitDir)/horgosd-gbt32960.socket": 0o644,
                "\(layout.snippetRoot)/sysusers.d/horgos.conf": 0o644,
                "\(layout.snippetRoot)/tmpfiles.d/horgos.conf": 0o644,
                "\(prefix)/share/horgos/horgosd.yaml.example": 0o644,
                "\(prefix)/share/horgos/pki-bootstrap.sh": 0o755,
                "\(prefix)/share/horgos/socket-activation.conf": 0o644,
                "\(prefix)/share/doc/horgos/RUNBOOK.md": 0o644,
                "\(prefix)/share/doc/horgos/systemd-hardening.md": 0o644,
                "etc/horgos/horgosd.yaml": 0o640,
            ]
            let hostBefore = HostSnapshot(paths: Array(expected.keys))

            let result = try await scratch.runInstall(destdir: destdir, prefix: layout.prefix)

            #expect(result.status == 0, "install.sh failed:\n\(result.stdout)\n\(result.stderr)")
            #expect(result.stdout.contains("Next steps"))
            #expect(try scratch.systemToolCalls() == [], "install.sh with DESTDIR ran system tools")
            #expect(HostSnapshot(paths: Array(expected.keys)) == hostBefore, "install.sh wrote outside DESTDIR")
            #expect(try Scratch.files(under: destdir) == Set(expected.keys))
            for (path, mode) in expected {
                #expect(try Scratch.mode(of: destdir.appending(path: path)) == mode, "mode of \(path)")
            }
            let fakeDaemon = try String(contentsOf: destdir.appending(path: "\(prefix)/bin/horgosd"), encoding: .utf8)
            #expect(fakeDaemon.contains("stand-in horgosd"))

            let service = try String(
                contentsOf: destdir.appending(path: "\(layout.unitDir)/horgosd.service"),
                encoding: .utf8
            )
            let execStart = service.split(separator: "\n").filter { $0.hasPrefix("ExecStart=") }
            #expect(execStart == ["ExecStart=\(layout.prefix)/bin/horgosd --config /etc/horgos/horgosd.yaml"])
            #expect(service.contains("Documentation=file:\(layout.prefix)/share/doc/horgos/RUNBOOK.md"))

            let installedUnits = try await Script.run(
                ["Deploy/check-units.sh", "--unit-dir", destdir.appending(path: layout.unitDir).path]
            )
            #expect(installedUnits.status == 0, "installed units fail the checks:\n\(installedUnits.stderr)")
        }

        @Test func installKeepsAnExistingConfigurationAndCanAddTheSocketActivationDropIn() async throws {
            let scratch = try Scratch()
            let destdir = scratch.url.appending(path: "root")
            let config = destdir.appending(path: "etc/horgos/horgosd.yaml")
            try FileManager.default.createDirectory(
                at: config.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try "regions: [DE]\n".write(to: config, atomically: true, encoding: .utf8)

            let result = try await scratch.runInstall(
                destdir: destdir,
                prefix: "/usr/local",
                extraEnvironment: ["HORGOS_SOCKET_ACTIVATION": "1"]
            )

            #expect(result.status == 0, "install.sh failed:\n\(result.stderr)")
            #expect(try String(contentsOf: config, encoding: .utf8) == "regions: [DE]\n")
            #expect(result.stdout.contains("kept the existing /etc/horgos/horgosd.yaml"))
            let dropIn = destdir.appending(path: "etc/systemd/system/horgosd.service.d/socket-activation.conf")
            #expect(try String(contentsOf: dropIn, encoding: .utf8).contains("Requires=horgosd.socket"))
            #expect(result.stdout.contains("systemctl enable --now horgosd.socket horgosd.service"))
        }

        @Test func pkiBootstrapRunsHorgosctlInOrderAndLocksDownTheKeys() async throws {
            let scratch = try Scratch()
            let caDir = scratch.url.appending(path: "ca")
            let pkiDir = scratch.url.appending(path: "etc/horgos/pki")
            let user = try await Script.run(["/usr/bin/id", "-un"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)

            let result = try await Script.run(
                [
                    "Deploy/pki-bootstrap.sh", "--host", "ingest.example.com", "--ca-dir", caDir.path,
                    "--pki-dir", pkiDir.path, "--service-user", user, "--gateway", "depot-1", "--market", "DE",
                ],
                environment: ["HORGOSCTL": scratch.fakeHorgosctl.path]
            )

            #expect(result.status == 0, "pki-bootstrap.sh failed:\n\(result.stdout)\n\(result.stderr)")
            #expect(
                try scratch.horgosctlCalls() == [
                    "pki init --dir \(caDir.path)",
                    "pki issue server --dir \(caDir.path) --name ingest.example.com",
                    "pki issue gateway --dir \(caDir.path) --name depot-1 --market DE",
                ]
            )
            #expect(try Scratch.mode(of: caDir) == 0o700)
            #expect(try Scratch.mode(of: caDir.appending(path: "ca.key")) == 0o600)
            #expect(try Scratch.mode(of: caDir.appending(path: "gateway-depot-1.key")) == 0o600)
            #expect(try Scratch.mode(of: pkiDir) == 0o750)
            #expect(try Scratch.mode(of: pkiDir.appending(path: "server.key")) == 0o600)
            #expect(try Scratch.mode(of: pkiDir.appending(path: "revoked.txt")) == 0o640)
            #expect(try Scratch.files(under: pkiDir) == ["ca.crt", "server.crt", "server.key", "revoked.txt"])
            #expect(!FileManager.default.fileExists(atPath: caDir.appending(path: "server.key").path))

            let again = try await Script.run(
                [
                    "Deploy/pki-bootstrap.sh", "--host", "x", "--ca-dir", caDir.path, "--pki-dir", pkiDir.path,
                    "--service-user", user,
                ],
                environment: ["HORGOSCTL": scratch.fakeHorgosctl.path]
            )
            #expect(again.status != 0, "a second bootstrap must not overwrite the server key")
            #expect(again.stderr.contains("bootstrapped already"))
        }
    }

    /// Where `install.sh` puts units and snippets for one `PREFIX`.
    struct InstallLayout: Sendable, CustomTestStringConvertible {
        var prefix: String
        /// Relative to DESTDIR.
        var unitDir: String
        /// Parent of `sysusers.d` and `tmpfiles.d`, relative to DESTDIR.
        var snippetRoot: String
        var testDescription: String { "PREFIX=\(prefix)" }
    }

    /// Runs the repository's scripts and collects what they print.
    enum Script {
        static let repoRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // DeployTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()

        struct Result {
            var status: Int32
            var stdout: String
            var stderr: String
        }

        /// Runs `arguments[0]` (relative to the repository root unless absolute) from the repository root.
        /// Output goes through files, not pipes, so a chatty script cannot fill a pipe and hang.
        static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
            let executable = arguments[0]
            let output = try await runProcess(
                executable.hasPrefix("/") ? executable : repoRoot.appending(path: executable).path,
                Array(arguments.dropFirst()), in: repoRoot.path,
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
            return Result(status: output.status, stdout: output.standardOutput, stderr: output.standardError)
        }

        /// The figure in check-units.sh's "exposure 1.1 (limit 1.5)".
        static func exposure(in output: String) -> Double? {
            guard let range = output.range(of: #"exposure ([0-9.]+)"#, options: .regularExpression) else { return nil }
            return Double(output[range].dropFirst("exposure ".count))
        }
    }

    /// A temporary directory with stand-in executables, removed when the value goes away.
    final class Scratch {
        let url: URL
        /// Fake `horgosd`, `horgosctl`, `horgos-sim` for `HORGOS_BIN_DIR`.
        let binDir: URL
        /// Put first in PATH: `systemctl`, `systemd-sysusers`, `systemd-tmpfiles`, `swift` that only log.
        let trapDir: URL
        /// A `horgosctl` that implements the `pki` file contract pki-bootstrap.sh documents.
        let fakeHorgosctl: URL

        init() throws {
            url = FileManager.default.temporaryDirectory.appending(path: "horgos-deploytests-\(UUID())")
            binDir = url.appending(path: "prebuilt")
            trapDir = url.appending(path: "trap")
            fakeHorgosctl = url.appending(path: "fake-horgosctl/horgosctl")
            for directory in [binDir, trapDir, fakeHorgosctl.deletingLastPathComponent(), url.appending(path: "tmp")] {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            }
            for product in ["horgosd", "horgosctl", "horgos-sim"] {
                try Self.writeExecutable(binDir.appending(path: product), "#!/bin/sh\necho 'stand-in \(product)'\n")
            }
            for tool in ["systemctl", "systemd-sysusers", "systemd-tmpfiles", "swift"] {
                try Self.writeExecutable(
                    trapDir.appending(path: tool),
                    "#!/bin/sh\necho \"\(tool) $*\" >> '\(url.path)/system-tool-calls.log'\nexit 1\n"
                )
            }
            try Self.writeExecutable(
                fakeHorgosctl,
                """
                #!/bin/sh
                echo "$*" >> '\(url.path)/horgosctl-calls.log'
                case "$1 $2 $3" in
                  "pki init --dir") echo CA > "$4/ca.crt"; echo CAKEY > "$4/ca.key" ;;
                  "pki issue server") echo CERT > "$5/server.crt"; echo KEY > "$5/server.key" ;;
                  "pki issue gateway") echo CERT > "$5/gateway-$7.crt"; echo KEY > "$5/gateway-$7.key" ;;
                  *) echo "fake horgosctl: unexpected $*" >&2; exit 64 ;;
                esac

                """
            )
        }

        deinit { try? FileManager.default.removeItem(at: url) }

        func runInstall(
            destdir: URL,
            prefix: String,
            extraEnvironment: [String: String] = [:]
        ) async throws -> Script.Result {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            return try await Script.run(
                ["Deploy/install.sh"],
                environment: [
                    "DESTDIR": destdir.path,
                    "PREFIX": prefix,
                    "HORGOS_BIN_DIR": binDir.path,
                    "PATH": "\(trapDir.path):\(path)",
                    "TMPDIR": url.appending(path: "tmp").path,
                ].merging(extraEnvironment) { $1 }
            )
        }

        /// System tools the script under test ran (each logs a line), or [] if none.
        func systemToolCalls() throws -> [String] { try lines(of: "system-tool-calls.log") }

        func horgosctlCalls() throws -> [String] { try lines(of: "horgosctl-calls.log") }

        private func lines(of name: String) throws -> [String] {
            let log = url.appending(path: name)
            guard FileManager.default.fileExists(atPath: log.path) else { return [] }
            return try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
        }

        /// Regular files under `root`, as paths relative to it.
        static func files(under root: URL) throws -> Set<String> {
            var found: Set<String> = []
            let rootPath = root.standardizedFileURL.path
            guard let walker = FileManager.default.enumerator(atPath: rootPath) else { return [] }
            while let relative = walker.nextObject() as? String {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: rootPath + "/" + relative, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                {
                    found.insert(relative)
                }
            }
            return found
        }

        static func mode(of url: URL) throws -> Int {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }

        private static func writeExecutable(_ url: URL, _ text: String) throws {
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
    }

    /// Existence, size and modification time of host paths (DESTDIR-relative paths taken from `/`), to
    /// show that an install into DESTDIR left the same paths on the real system alone.
    struct HostSnapshot: Equatable {
        private var entries: [String: String]

        init(paths: [String]) {
            var entries: [String: String] = [:]
            for path in paths {
                let attributes = try? FileManager.default.attributesOfItem(atPath: "/" + path)
                entries[path] = attributes.map { "\($0[.size] ?? "?") \($0[.modificationDate] ?? "?")" } ?? "absent"
            }
            self.entries = entries
        }
    }
#endif
