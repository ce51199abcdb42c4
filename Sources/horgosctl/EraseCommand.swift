import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl erase VIN --reason TEXT`: asks the running daemon to remove a vehicle from every day file
/// and table of this node, its registry row and its pending journal entries.
struct EraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Erase a vehicle's data from this node (through the running daemon) and print what was removed.",
        discussion: """
            Sends POST /erase to the daemon's admin endpoint. For every region of this node holding the VIN, \
            the daemon writes a tombstone into its journal (ordered with ingest: frames of the vehicle that \
            arrive after it are stored as usual) and its applier deletes the vehicle from every day file \
            (native and GB/T 32960 tables) and the registry, with SQLite's secure_delete (deleted content \
            is zeroed), then truncates the WALs, so the bytes leave the files. A restart replays the tombstone: \
            erased rows never come back. The request, the reason and the outcome go to the audit log with \
            the peer credentials of the admin socket. Backups taken before keep the vehicle (see \
            Deploy/RUNBOOK.md, "Requests from data subjects and regulators").

            EXIT CODES: 0 erased; 1 journaled but not yet applied in every region (it will be; the answer \
            names them) or the daemon failed; 2 bad VIN or no --reason; 3 daemon unreachable; 4 no region \
            of this node holds the VIN.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The vehicle's VIN (17 characters).")
    var vin: String

    @Option(help: ArgumentHelp("Why (the request it answers, a ticket number): recorded in the audit log.", valueName: "text"))
    var reason: String

    @Option(help: "Seconds to wait for the daemon's answer.")
    var timeout = 300

    /// The daemon's answer (`VehicleEraser.Answer`).
    struct Answer: Codable {
        var vin: String
        var reason: String
        var regions: [EraseReport]
        var pendingRegions: [String]
        var telemetryRows: Int
        var totalRows: Int
        var auditRecord: UInt64?
    }

    func run() async throws {
        let vin = try CtlContext.vin(vin)
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else {
            throw CtlError(
                .badArguments, "--reason is empty",
                remedy: "say why the vehicle is erased (the request it answers), for the audit log")
        }
        let context = try await global.context()
        let body = try JSONSerialization.data(withJSONObject: ["vin": vin.description, "reason": reason])
        let response = try await AdminClient.post(
            context.admin, path: "/erase", body: Array(body), timeoutSeconds: max(1, timeout))
        let text = String(decoding: response.body, as: UTF8.self)
        let message =
            ((try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any])?["error"] as? String ?? text
        switch response.status {
        case 200, 202:
            break
        case 400:
            throw CtlError(.badArguments, "the daemon refused the erasure: \(message)", remedy: "fix the request")
        case 404:
            throw CtlError(
                .notFound, message,
                remedy: "check the VIN (horgosctl vehicle VIN), and --admin when the fleet has several nodes")
        case 405:
            throw CtlError(
                .failure, "the daemon at \(context.admin) does not take POST /erase",
                remedy: "upgrade horgosd to this version")
        default:
            throw CtlError(
                .failure, "the daemon answered HTTP \(response.status): \(message)",
                remedy: "check the daemon's journal (journalctl -u horgosd); nothing was erased unless it says so")
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(response.body)) else {
            throw CtlError(.failure, "the daemon's answer cannot be read: \(text.prefix(300))", remedy: "report this")
        }
        if context.json {
            Console.out(text)
        } else {
            var table = TextTable([
                .init("REGION"), .init("FILE"), .init("TABLE"), .init("ROWS", numeric: true),
            ])
            for report in answer.regions {
                for file in report.files {
                    for tableName in file.rows.keys.sorted() {
                        table.append([report.region, file.name, tableName, "\(file.rows[tableName]!)"])
                    }
                }
            }
            if !table.rows.isEmpty { Console.out(table.render()) }
            let lsns = answer.regions.map { "\($0.region) at LSN \($0.lsn)" }.joined(separator: ", ")
            Console.line(
                "erased \(answer.vin): \(answer.telemetryRows) telemetry rows, \(answer.totalRows) rows in all"
                    + (lsns.isEmpty ? "" : " (tombstones: \(lsns))")
                    + (answer.auditRecord.map { "; audit record \($0)" } ?? ""))
        }
        if !answer.pendingRegions.isEmpty {
            throw CtlError(
                .failure,
                "the erasure is journaled but not yet applied in \(answer.pendingRegions.joined(separator: " ")) "
                    + "(its writer is busy or degraded)",
                remedy: "it will be applied, also after a restart; horgosctl status shows the region's writer")
        }
    }
}
