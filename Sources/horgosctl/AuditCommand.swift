import ArgumentParser
import Foundation
import HorgosAudit
import HorgosConfig

/// `horgosctl audit`: lists the audit log of operator actions, or verifies its hash chain.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List the audit log of operator actions (erase, export, backup, restore, prune, pki, reload), "
            + "or --verify it.",
        discussion: """
            The log (audit.path, default <state>/audit.log) holds one JSON line per action: when, which \
            operator (the admin socket peer's uid for daemon actions, the invoking user for CLI actions), \
            what, with which arguments, and the outcome; each record carries the SHA-256 of the one before \
            it, and <audit.path>.head names the last record. --verify checks every record's hash, their \
            numbering and chaining, the end of the file and the anchor, and names the first record that was \
            changed, removed, reordered or cut off (exit 5), or says the log is intact (exit 0).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(
        help: ArgumentHelp("Records from this time on. " + TimeArgument.accepted, valueName: "time"),
        transform: TimeArgument.parse)
    var from: TimeArgument?

    @Option(help: ArgumentHelp("Records before this time.", valueName: "time"), transform: TimeArgument.parse)
    var to: TimeArgument?

    @Option(help: ArgumentHelp("The audit log (default: audit.path of the configuration).", valueName: "path"))
    var file: String?

    @Flag(help: "Check the hash chain and the anchor instead of listing.")
    var verify = false

    func run() async throws {
        let context = try await global.context()
        let path = file ?? context.configuration.effectiveAuditPath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CtlError(
                .notFound, "no audit log at \(path)",
                remedy: "pass --file, or --config/--state of the node (audit.path, default <state>/audit.log)")
        }
        if verify {
            let result = AuditLog.verify(path: path)
            if context.json {
                try Console.json(result)
            } else if result.intact {
                Console.line(
                    "audit log \(path): \(result.records) record(s), intact (hash chain and anchor agree; last hash "
                        + "\(result.lastHash))")
            }
            if let problem = result.problem {
                throw CtlError(
                    .dataProblem, "audit log \(path) is damaged: \(problem.message)",
                    remedy: "keep the file as evidence; compare with the copies in the system journal "
                        + "(journalctl -t horgosctl, journalctl -u horgosd | grep 'audit record'); RUNBOOK \"Audit log\"")
            }
            return
        }
        let now = CtlClock.nowMs()
        let fromMs = from?.epochMs(nowMs: now) ?? .min
        let toMs = to?.epochMs(nowMs: now) ?? .max
        let records = AuditLog.records(path: path).filter { $0.timeMs >= fromMs && $0.timeMs < toMs }
        if context.json {
            try Console.json(records)
            return
        }
        var table = TextTable([
            .init("SEQ", numeric: true), .init("TIME"), .init("ACTION"), .init("OUTCOME"), .init("OPERATOR"),
            .init("ARGUMENTS"), .init("DETAIL"),
        ])
        for record in records {
            table.append([
                "\(record.seq)", Format.time(record.timeMs), record.action, record.outcome.rawValue,
                record.actor.summary,
                record.arguments.keys.sorted().map { "\($0)=\(record.arguments[$0]!)" }.joined(separator: " "),
                record.detail ?? "",
            ])
        }
        Console.out(table.render())
        Console.line("\(records.count) record(s) in \(path)")
    }
}
