import ArgumentParser
import Foundation
import HorgosPKI

/// `horgosctl pki ...`: creates the fleet CA and issues server, vehicle and gateway certificates.
///
/// Files are PEM; private keys are written with mode 0600 and directories with 0700. The CA key should
/// live on an operator machine, not on the daemon host. Exit codes: 0 done, 65 (EX_DATAERR) for a bad VIN,
/// market or name, 73 (EX_CANTCREAT) when files cannot be read or written, 1 otherwise.
struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Create the fleet CA and issue server, vehicle and gateway certificates.",
        subcommands: [InitCA.self, IssueServer.self, IssueVehicle.self, IssueGateway.self])

    /// Where the CA is read from.
    struct CAOptions: ParsableArguments {
        @Option(help: "Directory with ca.pem and ca-key.pem.")
        var caDirectory = "./horgos-pki"

        func loadAuthority() throws -> FleetPKI {
            try run { () throws(FleetPKIError) in
                try FleetPKI(caCertificatePath: caDirectory + "/ca.pem", caPrivateKeyPath: caDirectory + "/ca-key.pem")
            }
        }
    }

    /// Where an issued certificate goes and how long it is valid.
    struct OutputOptions: ParsableArguments {
        @Option(help: "Directory for <name>.pem and <name>-key.pem (default: the CA directory).")
        var out: String?

        @Option(help: "Validity in days.")
        var days = 825

        func write(_ issued: IssuedCertificate, name: String, defaultDirectory: String) throws -> String {
            let directory = out ?? defaultDirectory
            let certificatePath = "\(directory)/\(name).pem"
            try run { () throws(FleetPKIError) in
                try issued.write(certificatePath: certificatePath, privateKeyPath: "\(directory)/\(name)-key.pem")
            }
            return certificatePath
        }
    }

    struct InitCA: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init-ca", abstract: "Create a new fleet CA (refuses to overwrite an existing one).")

        @OptionGroup var ca: CAOptions

        @Option(help: "The CA's common name (default: \"Horgos Fleet CA <date>\").")
        var commonName: String?

        @Option(help: "Validity in days.")
        var days = 3652

        func run() throws {
            let certificatePath = ca.caDirectory + "/ca.pem"
            if FileManager.default.fileExists(atPath: certificatePath) {
                throw PKIUsageError(
                    message: "\(certificatePath) exists; remove it first or use another --ca-directory", exitCode: 73)
            }
            let days = self.days
            let commonName = self.commonName
            let directory = ca.caDirectory
            let authority = try PKICommand.run { () throws(FleetPKIError) in
                try FleetPKI.createCertificateAuthority(commonName: commonName, validity: .days(days))
            }
            try PKICommand.run { () throws(FleetPKIError) in
                try authority.write(certificatePath: certificatePath, privateKeyPath: directory + "/ca-key.pem")
            }
            print(certificatePath)
        }
    }

    struct IssueServer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue-server",
            abstract: "Issue the daemon's TLS certificate (localhost, 127.0.0.1 and ::1 are always included).")

        @OptionGroup var ca: CAOptions
        @OptionGroup var output: OutputOptions

        @Option(name: .customLong("name"), help: "A DNS name or IP address of the daemon (repeatable).")
        var names: [String] = []

        func run() throws {
            let authority = try ca.loadAuthority()
            let names = self.names
            let days = output.days
            let issued = try PKICommand.run { () throws(FleetPKIError) in
                try authority.issueServerCertificate(names: names, validity: .days(days))
            }
            print(try output.write(issued, name: "server", defaultDirectory: ca.caDirectory))
        }
    }

    struct IssueVehicle: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue-vehicle", abstract: "Issue a vehicle (TBox) client certificate; files are named by VIN."
        )

        @OptionGroup var ca: CAOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "The vehicle's VIN (17 characters of A-H J-N P R-Z 0-9).")
        var vin: String

        @Option(help: "The market the unit is provisioned for (ISO 3166-1 alpha-2, e.g. AE).")
        var market: String

        func run() throws {
            let authority = try ca.loadAuthority()
            let vin = self.vin.uppercased()
            let market = self.market.uppercased()
            let days = output.days
            let issued = try PKICommand.run { () throws(FleetPKIError) in
                try authority.issueVehicleCertificate(vin: vin, market: market, validity: .days(days))
            }
            print(try output.write(issued, name: vin, defaultDirectory: ca.caDirectory))
        }
    }

    struct IssueGateway: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue-gateway", abstract: "Issue a regional gateway certificate (any VIN of one market).")

        @OptionGroup var ca: CAOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "The gateway's name (letters, digits, '-', '_' and '.'), used for its files too.")
        var name: String

        @Option(help: "The one market the gateway serves (ISO 3166-1 alpha-2).")
        var market: String

        func run() throws {
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }),
                !name.hasPrefix(".")
            else {
                throw PKIUsageError(
                    message: "gateway name \"\(name)\" must be letters, digits, '-', '_' or '.'",
                    exitCode: 65)
            }
            let authority = try ca.loadAuthority()
            let name = self.name
            let market = self.market.uppercased()
            let days = output.days
            let issued = try PKICommand.run { () throws(FleetPKIError) in
                try authority.issueGatewayCertificate(name: name, market: market, validity: .days(days))
            }
            print(try output.write(issued, name: name, defaultDirectory: ca.caDirectory))
        }
    }

    /// Runs a PKI operation, turning its error into a message on stderr and a meaningful exit code.
    static func run<T>(_ body: () throws(FleetPKIError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            let code: Int32 =
                switch error.code {
                case .invalidSubject: 65
                case .fileSystem, .unreadableCertificate, .unreadablePrivateKey: 73
                default: 1
                }
            throw PKIUsageError(message: error.description, exitCode: code)
        }
    }
}

/// A PKI command failure: printed as `horgosctl: <message>` with its exit code.
struct PKIUsageError: Error, CustomStringConvertible {
    var message: String
    var exitCode: Int32
    var description: String { message }
}

extension PKICommand.CAOptions {
    fileprivate func run<T>(_ body: () throws(FleetPKIError) -> T) throws -> T { try PKICommand.run(body) }
}

extension PKICommand.OutputOptions {
    fileprivate func run<T>(_ body: () throws(FleetPKIError) -> T) throws -> T { try PKICommand.run(body) }
}
