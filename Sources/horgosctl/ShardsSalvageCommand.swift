import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire
import NIOHTTP1

/// `horgosctl shards salvage FILE`: every recoverable row of a damaged (quarantined) shard file into a
/// new file, through the project's own reading of SQLite's format (`ShardSalvage`): Debian 12's
/// `sqlite3 .recover` cannot run (it lacks `sqlite_dbpage`).
struct ShardsSalvageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "salvage",
        abstract: "Copy every row still readable in a damaged shard file into a new file.",
        discussion: """
            Reads FILE and its -wal (never changes them) page by page, skipping damaged pages, and writes \
            every row it can read, with its rowid, into --to (default FILE.salvaged.sqlite), a new file \
            with the same schema and meta. Leaf pages under a damaged interior page are read too. Safe \
            while the daemon runs. Exit 5 when the file's header or schema page is damaged (nothing can be \
            told apart: restore it from a backup), 1 when --to exists.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(
        help: ArgumentHelp(
            "The damaged file, e.g. DE/telemetry-2026-11-29.sqlite.quarantined-1764417600000.",
            valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("The new file to write (must not exist).", valueName: "path"))
    var to: String?

    func run() async throws {
        let context = try await global.context()
        let destination = to ?? Self.defaultDestination(file)
        let report: ShardSalvageReport
        do throws(StoreError) {
            report = try ShardSalvage.salvage(file: file, to: destination)
        } catch {
            switch error.kind {
            case .notFound:
                throw CtlError(.notFound, "no file \(file)", remedy: "give the quarantined file's path")
            case .sqlite:
                throw CtlError(
                    .dataProblem, "cannot salvage \(file): \(error.message)",
                    remedy: "restore the file from a backup (RUNBOOK.md, \"Back up and restore a region\")")
            default:
                throw CtlError(.failure, "cannot salvage \(file): \(error)", remedy: "check --to and free space")
            }
        }
        if context.json {
            try Console.json(report)
            return
        }
        var table = TextTable([.init("TABLE"), .init("ROWS", numeric: true)])
        for entry in report.tables where entry.rows > 0 { table.append([entry.name, "\(entry.rows)"]) }
        Console.out(table.render())
        Console.line(
            "\(report.totalRows) rows salvaged into \(destination); \(report.damagedPages.count) damaged page(s) of "
                + "\(report.pages) skipped, \(report.orphanPagesRead) page(s) read past a damaged parent"
                + (report.walApplied ? "; the -wal was folded in" : ""))
    }

    /// `X.sqlite.quarantined-MS` → `X.sqlite.quarantined-MS.salvaged.sqlite`.
    static func defaultDestination(_ file: String) -> String { file + ".salvaged.sqlite" }
}

/// `horgosctl shards acknowledge CC`: an operator saw the region's quarantined files; the daemon stops
/// reporting them on `/health/CC` and in `horgos_region_quarantine_unacknowledged`.
struct ShardsAcknowledgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acknowledge",
        abstract: "Acknowledge a region's quarantined files (through the daemon's admin endpoint).",
        discussion: """
            The files stay where they are (salvage them with horgosctl shards salvage); the acknowledgement \
            is recorded in the region directory and survives restarts. Exit 3 when the daemon does not answer, \
            4 when it does not serve the region.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The region.", valueName: "CC"))
    var region: String

    struct Answer: Codable {
        var region: String
        var acknowledged: [String]
    }

    func run() async throws {
        let context = try await global.context()
        let region = try context.region(region)
        let response = try await AdminClient.request(
            context.admin, method: .POST, path: "/quarantine/\(region.code)/acknowledge")
        switch response.status {
        case 200:
            break
        case 404:
            throw CtlError(
                .notFound, "the daemon at \(context.admin) does not serve region \(region.code)",
                remedy: "use --admin (or --node) of the node that serves it")
        default:
            throw CtlError(
                .failure,
                "the daemon refused: HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))",
                remedy: "check the daemon's journal (journalctl -u horgosd)")
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(response.body)) else {
            throw CtlError(.failure, "unexpected answer from \(context.admin)", remedy: "use a matching horgosctl")
        }
        if context.json {
            try Console.json(answer)
        } else if answer.acknowledged.isEmpty {
            Console.line("\(answer.region): no unacknowledged quarantined file")
        } else {
            Console.line("\(answer.region): acknowledged \(answer.acknowledged.joined(separator: ", "))")
        }
    }
}
