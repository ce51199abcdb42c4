import ArgumentParser
import Foundation
import HorgosConfig

#if canImport(Glibc)
    import Glibc
#endif

/// `horgosctl`: the operator's CLI for Horgos, reading the shards directly (read-only) and the
/// daemon's admin endpoint.
///
/// Every failure leaves through `main()`, which maps it to one of the documented exit statuses
/// (argument-parser's own usage errors included, as "bad arguments").
struct Horgosctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "horgosctl",
        abstract: "Operate a Horgos telematics ingestion node: fleet health, vehicles, alarms, shards, PKI.",
        discussion: """
            Shard commands (fleet, vehicle, alarms, shards, export, prune) read <state>/<CC>/*.sqlite \
            directly and read-only (prune deletes expired day files), so they work whether or not horgosd \
            runs. status, erase and reload ask the running daemon. export, backup, restore, prune and pki \
            issue/revoke are recorded in the audit log (audit.path) as the invoking user; audit lists it. The state directory, regions and admin address come \
            from the daemon's configuration (--config, /etc/horgos/horgosd.yaml, HORGOS_* variables) \
            unless --state / --admin are given. Every subcommand prints an aligned table, or JSON with \
            --json.

            TIMES
              2026-11-29T10:00:00Z  ISO 8601 (fractional seconds, +hh:mm offsets too)
              2026-11-29            midnight UTC of that day
              90s 15m 2h 7d now     that long ago (HORGOSCTL_NOW=<ISO time> sets now)

            EXIT CODES
              0  success
              1  other failure (a file could not be written, an unexpected error)
              2  bad arguments: unknown option, malformed time, a VIN that is not
                 17 valid characters, a region that is not configured, a bad
                 configuration file or HORGOS_* value (nothing was opened)
              3  daemon unreachable: the admin endpoint did not answer; check that
                 horgosd runs and that --admin (or listen.admin) is its address
              4  not found: unknown VIN, no data for the region or time range, no
                 state directory, no CA in --dir
              5  data problem: an integrity check failed, a shard file is
                 unreadable, damaged or not a Horgos file
            """,
        version: HorgosServerInfo.version,
        subcommands: [
            StatusCommand.self, FleetCommand.self, VehicleCommand.self, AlarmsCommand.self, ShardsCommand.self,
            BatteryHealthCommand.self,
            ExportCommand.self, PruneCommand.self, BackupCommand.self, RestoreCommand.self, PKICommand.self,
            EraseCommand.self, AuditCommand.self, DemoCommand.self, ReloadCommand.self,
        ])

    /// Parses, runs, and exits with the documented status.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let status: Int32
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            status = ExitStatus.ok.rawValue
        } catch let error as CtlError {
            Console.error("horgosctl: \(error.description)")
            status = error.status.rawValue
        } catch {
            status = report(parserError: error)
        }
        Glibc.exit(status)
    }

    /// Help and version go to stdout with 0; every usage error to stderr with 2 (argument-parser would
    /// use 64); an `ExitCode` thrown on purpose keeps its value.
    private static func report(parserError error: any Error) -> Int32 {
        let code = exitCode(for: error)
        let message = fullMessage(for: error)
        if code == .success {
            if !message.isEmpty { Console.line(message) }
            return 0
        }
        if let exitCode = error as? ExitCode { return exitCode.rawValue }
        if !message.isEmpty { Console.error(message) }
        if code == .validationFailure || error is ValidationError {
            Console.error("  -> see horgosctl help <subcommand> for the accepted arguments")
            return ExitStatus.badArguments.rawValue
        }
        return code.rawValue == 64 ? ExitStatus.badArguments.rawValue : ExitStatus.failure.rawValue
    }
}
