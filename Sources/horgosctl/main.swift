import ArgumentParser
import Foundation
import HorgosServer

/// `horgosctl`: the operator CLI. For now only `pki` (fleet CA and certificates); fleet queries follow.
struct Horgosctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "horgosctl",
        abstract: "Horgos operator CLI.",
        version: HorgosServerInfo.version,
        subcommands: [PKICommand.self])
}

do {
    var command = try Horgosctl.parseAsRoot()
    try command.run()
} catch let error as PKIUsageError {
    FileHandle.standardError.write(Data("horgosctl: \(error.message)\n".utf8))
    exit(error.exitCode)
} catch {
    Horgosctl.exit(withError: error)
}
