import ArgumentParser
import Foundation
import HorgosPKI
import HorgosConfig
import HorgosStore
import HorgosWire
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// `horgosctl pki`: the fleet PKI (CA, server, vehicle and gateway certificates, revocation) through
/// HorgosPKI, the daemon's own certificate code: no openssl involved.
///
/// File layout in a CA directory (the contract of Deploy/pki-bootstrap.sh and RUNBOOK.md):
/// `ca.crt`, `ca.key`, `server.crt` (leaf then CA), `server.key`, `vehicle-<VIN>.crt|.key`,
/// `gateway-<NAME>.crt|.key`. Keys are written 0600, certificates 0644, new directories 0700.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Fleet PKI: create the CA, issue server, vehicle and gateway certificates, revoke.",
        discussion: """
            A CA directory holds ca.crt and ca.key (0600). Without --dir, issue uses the daemon's development \
            PKI in <state>/pki (the same names). Issued files go to --out (default: the CA directory): \
            server.crt (certificate then CA) and server.key, vehicle-<VIN>.crt/.key, gateway-<NAME>.crt/.key. \
            Every private key is written 0600, certificates 0644, created directories 0700. The serial printed \
            is the one revoke --serial and the daemon's logs use.
            """,
        subcommands: [PKIInitCommand.self, PKIIssueCommand.self, PKIRevokeCommand.self])
}

/// `horgosctl pki init --dir D`: a new fleet CA.
struct PKIInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a new fleet CA: DIR/ca.crt and DIR/ca.key (0600).")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Directory for the CA (created 0700 if missing).", valueName: "dir"))
    var dir: String

    @Option(help: "The CA's common name (default \"Horgos Fleet CA <date>\").")
    var commonName: String?

    @Option(help: "Validity in days.")
    var days = 3652

    func run() async throws {
        let context = try await global.context()
        guard days > 0 else { throw CtlError(.badArguments, "--days must be positive", remedy: "use --days 3652") }
        let paths = CADirectory(dir)
        for existing in [paths.productionKey, paths.productionCertificate]
        where FileManager.default.fileExists(atPath: existing) {
            throw CtlError(
                .badArguments, "\(existing) exists: \(dir) already holds a CA",
                remedy: "keep using it (horgosctl pki issue ... --dir \(dir)), or choose a new --dir for a new CA "
                    + "(RUNBOOK.md, \"Rotate the fleet CA\")")
        }
        let authority: FleetPKI
        do {
            authority = try FleetPKI.createCertificateAuthority(
                commonName: commonName, validity: .days(days))
        } catch {
            throw CtlError(.failure, "cannot create the CA: \(error)", remedy: "report this as a bug")
        }
        try PEMFiles.write(
            try PEMFiles.pem { try authority.caCertificatePEM }, to: paths.productionCertificate, mode: 0o644)
        try PEMFiles.write(authority.caPrivateKeyPEM, to: paths.productionKey, mode: 0o600)
        try IssueReport(
            kind: "ca", subject: authority.caCertificate.subject.description,
            serial: PEMFiles.serialHex(authority.caCertificate),
            notValidAfter: Format.time(Int64(authority.caCertificate.notValidAfter.timeIntervalSince1970 * 1000)),
            certificate: paths.productionCertificate, key: paths.productionKey
        ).print(json: context.json)
    }
}

/// `horgosctl pki issue server|vehicle|gateway`.
struct PKIIssueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue", abstract: "Issue a server, vehicle or gateway certificate from the fleet CA.",
        subcommands: [IssueServer.self, IssueVehicle.self, IssueGateway.self])

    /// Options every issue subcommand shares.
    struct Options: ParsableArguments {
        @Option(help: ArgumentHelp("CA directory (default: the development PKI in <state>/pki).", valueName: "dir"))
        var dir: String?

        @Option(help: ArgumentHelp("Where the certificate and key go (default: the CA directory).", valueName: "dir"))
        var out: String?

        @Option(help: "Validity in days.")
        var days = 825

        /// Loads the CA of `--dir` (or the development PKI) and says where output goes.
        func load(_ context: CtlContext) throws(CtlError) -> (FleetPKI, String) {
            guard days > 0 else { throw CtlError(.badArguments, "--days must be positive", remedy: "use --days 825") }
            let directory = dir ?? context.configuration.developmentPKIDirectory
            return (try CADirectory(directory).load(), out ?? directory)
        }

        /// The audit trail of an issue (`pki.issue`): into audit.path, or the CA directory's audit.log
        /// where no node state exists (an offline CA, a bootstrap before the daemon's first start).
        func trail(_ context: CtlContext, _ arguments: [String: String]) throws(CtlError) -> AuditTrail {
            let directory = dir ?? context.configuration.developmentPKIDirectory
            var arguments = arguments
            arguments["ca"] = directory
            arguments["days"] = "\(days)"
            return try AuditTrail(context, action: "pki.issue", arguments: arguments, fallbackDirectory: directory)
        }
    }

    /// `pki issue server --name HOST...`
    struct IssueServer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "server",
            abstract: "The daemon's TLS certificate: OUT/server.crt (certificate then CA) and OUT/server.key.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options

        @Option(help: "DNS name or IP the vehicles connect to (repeat for more; localhost is always included).")
        var name: [String] = []

        func run() async throws {
            let context = try await global.context()
            let (authority, out) = try options.load(context)
            let trail = try options.trail(context, ["kind": "server", "names": name.joined(separator: ",")])
            try await trail.run { () throws -> (IssueReport, String) in
                let issued: IssuedCertificate
                do {
                    issued = try authority.issueServerCertificate(names: name, validity: .days(options.days))
                } catch {
                    throw CtlError(.badArguments, "cannot issue the server certificate: \(error)", remedy: "check --name")
                }
                let leaf = try PEMFiles.pem { try issued.certificatePEM }
                let chain = leaf + (try PEMFiles.pem { try authority.caCertificatePEM })
                let report = try IssueReport.write(issued, kind: "server", certificatePEM: chain, directory: out, base: "server")
                return (report, report.auditDetail)
            }.print(json: context.json)
        }
    }

    /// `pki issue vehicle --vin VIN --market CC`
    struct IssueVehicle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vehicle", abstract: "A vehicle (TBox) certificate: OUT/vehicle-<VIN>.crt and .key.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options

        @Option(help: "The vehicle's VIN (17 characters, no I, O or Q).")
        var vin: String

        @Option(help: ArgumentHelp("The market the unit is provisioned for (a configured region).", valueName: "CC"))
        var market: String

        func run() async throws {
            let vin = try CtlContext.vin(vin)
            let context = try await global.context()
            let market = try context.region(market)
            let (authority, out) = try options.load(context)
            let trail = try options.trail(context, ["kind": "vehicle", "vin": vin.description, "market": market.code])
            try await trail.run { () throws -> (IssueReport, String) in
                let issued: IssuedCertificate
                do {
                    issued = try authority.issueVehicleCertificate(
                        vin: vin.description, market: market.code, validity: .days(options.days))
                } catch {
                    throw CtlError(.badArguments, "cannot issue the vehicle certificate: \(error)", remedy: "check --vin")
                }
                let report = try IssueReport.write(
                    issued, kind: "vehicle", certificatePEM: try PEMFiles.pem { try issued.certificatePEM },
                    directory: out, base: "vehicle-\(vin)")
                return (report, report.auditDetail)
            }.print(json: context.json)
        }
    }

    /// `pki issue gateway --name N --market CC`
    struct IssueGateway: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gateway", abstract: "A regional gateway certificate: OUT/gateway-<NAME>.crt and .key.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options

        @Option(help: "The gateway's name (letters, digits, '.', '_', '-'): its subject CN and file name.")
        var name: String

        @Option(help: ArgumentHelp("The one market it serves (a configured region).", valueName: "CC"))
        var market: String

        func run() async throws {
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
            guard !name.isEmpty, name.count <= 64, name.allSatisfy(allowed.contains), !name.hasPrefix(".") else {
                throw CtlError(
                    .badArguments, "gateway name \"\(name)\" is not 1-64 of letters, digits, '.', '_', '-'",
                    remedy: "use a short name such as depot-berlin")
            }
            let context = try await global.context()
            let market = try context.region(market)
            let (authority, out) = try options.load(context)
            let trail = try options.trail(context, ["kind": "gateway", "name": name, "market": market.code])
            try await trail.run { () throws -> (IssueReport, String) in
                let issued: IssuedCertificate
                do {
                    issued = try authority.issueGatewayCertificate(
                        name: name, market: market.code, validity: .days(options.days))
                } catch {
                    throw CtlError(.badArguments, "cannot issue the gateway certificate: \(error)", remedy: "check --name")
                }
                let report = try IssueReport.write(
                    issued, kind: "gateway", certificatePEM: try PEMFiles.pem { try issued.certificatePEM },
                    directory: out, base: "gateway-\(name)")
                return (report, report.auditDetail)
            }.print(json: context.json)
        }
    }
}

/// `horgosctl pki revoke --serial HEX | --vin VIN`: appends to the daemon's deny list.
struct PKIRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a certificate (--serial) or every certificate of a vehicle (--vin).",
        discussion: """
            Appends serial:<hex> or vin:<VIN> to the deny list the daemon reads: --list, else \
            tls.revocation_list, else <state>/pki/revoked.txt. The file keeps its owner and mode (created \
            0640 if missing). Then reload the daemon: systemctl reload horgosd.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Serial of the certificate in hex (as horgosctl pki issue prints it; ':' allowed).")
    var serial: String?

    @Option(help: "VIN whose certificates are all refused.")
    var vin: String?

    @Option(
        help: ArgumentHelp(
            "The deny-list file (default: tls.revocation_list or <state>/pki/revoked.txt).",
            valueName: "path"))
    var list: String?

    /// The JSON document.
    struct Report: Encodable {
        var list: String
        var entry: String
        var added: Bool
        var entries: Int
    }

    func validate() throws {
        guard (serial == nil) != (vin == nil) else {
            throw ValidationError("give exactly one of --serial HEX or --vin VIN")
        }
    }

    func run() async throws {
        let entry: String
        if let vin {
            let checked = try CtlContext.vin(vin)
            entry = "vin:\(checked)"
        } else {
            let digits = serial!.lowercased().filter { $0 != ":" }
            guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit) else {
                throw CtlError(
                    .badArguments, "--serial \"\(serial!)\" is not hexadecimal",
                    remedy: "copy the serial horgosctl pki issue printed, or openssl x509 -noout -serial shows")
            }
            let trimmed = digits.drop { $0 == "0" }
            entry = "serial:\(trimmed.isEmpty ? "0" : String(trimmed))"
        }
        let context = try await global.context()
        let path = list ?? context.configuration.effectiveRevocationListPath
        let trail = try AuditTrail(
            context, action: "pki.revoke", arguments: ["entry": entry, "list": path],
            fallbackDirectory: (path as NSString).deletingLastPathComponent)
        let (added, count) = try await trail.run { () throws -> ((Bool, Int), String) in
            let result = try append(entry, to: path)
            return (result, result.0 ? "added to \(path) (\(result.1) entries)" : "already in \(path)")
        }
        if context.json {
            try Console.json(Report(list: path, entry: entry, added: added, entries: count))
            return
        }
        Console.line(added ? "added \(entry) to \(path) (\(count) entries)" : "\(entry) is already in \(path)")
        if added { Console.line("next: systemctl reload horgosd (new handshakes are then refused)") }
    }

    /// Appends `entry` to the deny list at `path` unless it is in force already; (added, entries now).
    private func append(_ entry: String, to path: String) throws(CtlError) -> (Bool, Int) {
        var existing = ""
        if FileManager.default.fileExists(atPath: path) {
            do {
                existing = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw CtlError(
                    .failure, "cannot read \(path): \(error.localizedDescription)",
                    remedy: "run as root or the owner of the file")
            }
        }
        let current: RevocationList
        do {
            current = try RevocationList(parsing: existing)
        } catch {
            throw CtlError(
                .dataProblem, "the deny list \(path) is malformed: \(error)",
                remedy: "fix that line first (the daemon keeps its previous list until it parses)")
        }
        let updated = try? RevocationList(parsing: existing + "\n" + entry + "\n")
        let added = updated != current
        if added {
            var text = existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n"
            text += "\(entry)  # revoked \(Format.time(CtlClock.nowMs())) by horgosctl\n"
            try PEMFiles.append(text, to: path, mode: 0o640)
        }
        return (added, (updated ?? current).count)
    }
}

/// A CA directory: `ca.crt` + `ca.key` (`pki init`'s and the daemon's development PKI), or the names
/// a development PKI had before (`ca.pem`, `ca-key.pem`), which the daemon renames on its next start.
struct CADirectory {
    let path: String
    init(_ path: String) { self.path = path }

    var productionCertificate: String { path + "/ca.crt" }
    var productionKey: String { path + "/ca.key" }

    /// The CA, from whichever layout the directory holds; exit 4 when neither is there.
    func load() throws(CtlError) -> FleetPKI {
        let candidates = [(productionCertificate, productionKey), (path + "/ca.pem", path + "/ca-key.pem")]
        guard let (certificate, key) = candidates.first(where: { FileManager.default.fileExists(atPath: $0.1) }) else {
            throw CtlError(
                .notFound, "no CA in \(path) (neither ca.crt + ca.key nor ca.pem + ca-key.pem)",
                remedy: "pass --dir with the CA directory, or create one with horgosctl pki init --dir DIR")
        }
        do {
            return try FleetPKI(caCertificatePath: certificate, caPrivateKeyPath: key)
        } catch {
            throw CtlError(
                .dataProblem, "cannot load the CA in \(path): \(error)",
                remedy: "check that \(certificate) and \(key) are the CA's PEM files and readable")
        }
    }
}

/// What an issue or init wrote, for the table and `--json`.
struct IssueReport: Encodable {
    var kind: String
    var subject: String
    var serial: String
    var notValidAfter: String
    var certificate: String
    var key: String

    /// The audit record's detail: what was issued.
    var auditDetail: String { "\(kind) certificate serial \(serial) for \(subject), valid until \(notValidAfter)" }

    static func write(
        _ issued: IssuedCertificate, kind: String, certificatePEM: String, directory: String, base: String
    ) throws(CtlError) -> IssueReport {
        let certificatePath = "\(directory)/\(base).crt"
        let keyPath = "\(directory)/\(base).key"
        try PEMFiles.write(issued.privateKeyPEM, to: keyPath, mode: 0o600)
        try PEMFiles.write(certificatePEM, to: certificatePath, mode: 0o644)
        return IssueReport(
            kind: kind, subject: issued.certificate.subject.description,
            serial: PEMFiles.serialHex(issued.certificate),
            notValidAfter: Format.time(Int64(issued.certificate.notValidAfter.timeIntervalSince1970 * 1000)),
            certificate: certificatePath, key: keyPath)
    }

    func print(json: Bool) throws(CtlError) {
        if json {
            try Console.json(self)
            return
        }
        Console.line("\(kind) certificate \(subject)")
        Console.line("  serial       \(serial)")
        Console.line("  valid until  \(notValidAfter)")
        Console.line("  certificate  \(certificate) (0644)")
        Console.line("  key          \(key) (0600)")
    }
}

/// PEM files with exact modes: written through a temporary file, `fchmod`ed and renamed (keys never
/// exist with a looser mode), in directories created 0700.
enum PEMFiles {
    static func pem(_ encode: () throws -> String) throws(CtlError) -> String {
        do {
            return try encode() + "\n"
        } catch {
            throw CtlError(.failure, "cannot encode a certificate as PEM: \(error)", remedy: "report this as a bug")
        }
    }

    /// Lower-case hex without leading zeros: the form of the daemon's logs and of `revoked.txt`.
    static func serialHex(_ certificate: Certificate) -> String {
        let hex = certificate.serialNumber.bytes.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
        let trimmed = hex.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    static func makeDirectory(_ path: String) throws(CtlError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CtlError(.badArguments, "\(path) is not a directory", remedy: "choose another directory")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw CtlError(
                .failure, "cannot create directory \(path): \(String(cString: strerror(errno)))",
                remedy: "check the permissions of its parent")
        }
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws(CtlError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try makeDirectory(directory) }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw CtlError(
                .failure, "cannot create \(temporary): \(String(cString: strerror(errno)))",
                remedy: "check the permissions of \(directory)")
        }
        var ok = fchmod(fd, mode) == 0 && writeAll(fd, text)
        ok = ok && fsync(fd) == 0
        let failure = String(cString: strerror(errno))
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CtlError(.failure, "cannot write \(path): \(failure)", remedy: "check the disk and permissions")
        }
    }

    /// Appends in place (the file keeps its inode, owner and mode); creates it with `mode` if missing.
    static func append(_ text: String, to path: String, mode: mode_t) throws(CtlError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try makeDirectory(directory) }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw CtlError(
                .failure, "cannot open \(path): \(String(cString: strerror(errno)))",
                remedy: "run as root or the owner of the file")
        }
        let ok = writeAll(fd, text) && fsync(fd) == 0
        let failure = String(cString: strerror(errno))
        close(fd)
        guard ok else { throw CtlError(.failure, "cannot append to \(path): \(failure)", remedy: "check the disk") }
    }

    private static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            written += n
        }
        return true
    }
}
