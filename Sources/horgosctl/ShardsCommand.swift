import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl shards`: the shard files (the default `list`), the salvage of a quarantined file and the
/// acknowledgement of a region's quarantine.
struct ShardsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "Shard files per region (list, the default); salvage a damaged file; acknowledge a quarantine.",
        subcommands: [ShardsListCommand.self, ShardsSalvageCommand.self, ShardsAcknowledgeCommand.self],
        defaultSubcommand: ShardsListCommand.self)
}

/// `horgosctl shards [list]`: the files of every region with size, rows and time range; `--check` runs
/// SQLite's integrity check on each.
struct ShardsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Shard files per region: bytes, rows, time range; --check runs PRAGMA integrity_check.",
        discussion: """
            Rows of a partition are telemetry records, rows of a registry are vehicles. The check reads \
            every page of every file (slow on large shards; --quick runs quick_check). Exit 5 when a file \
            fails the check or cannot be read, 4 when no region has any file.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this region.", valueName: "CC"))
    var region: String?

    @Flag(help: "Run PRAGMA integrity_check on every file.")
    var check = false

    @Flag(help: "With --check: PRAGMA quick_check instead (skips index consistency).")
    var quick = false

    /// One region's files.
    struct RegionShards: Encodable {
        var region: String
        var files: [ShardFile]
        var integrity: [IntegrityReport]?
        /// Damaged files the daemon moved aside (their rows can be salvaged).
        var quarantined: [QuarantinedFile] = []
        /// Why the inventory could not be read (nil when it could).
        var error: String?
    }

    /// The JSON document.
    struct Report: Encodable {
        var regions: [RegionShards]
        /// False when a file failed its check or could not be read.
        var ok: Bool
    }

    func run() async throws {
        let context = try await global.context()
        let regions = try context.regions(region)
        try context.requireStateDirectory()
        var result: [RegionShards] = []
        var firstProblem: CtlError?
        for region in regions {
            let reader = context.reader(region)
            guard reader.hasData else { continue }
            var entry = RegionShards(region: region.code, files: [])
            do throws(StoreError) {
                entry.quarantined = try reader.quarantinedFiles()
                entry.files = try reader.inventory()
            } catch {
                let failure = CtlError(error, region: region, stateDirectory: context.stateDirectory)
                entry.error = failure.problem
                if failure.status == .dataProblem { firstProblem = firstProblem ?? failure }
            }
            if check {
                let reports = reader.integrityCheck(quick: quick)
                entry.integrity = reports
                if let bad = reports.first(where: { !$0.ok }), firstProblem == nil {
                    firstProblem = CtlError(
                        .dataProblem,
                        "integrity check failed: \(region.code)/\(bad.name): "
                            + bad.messages.prefix(3).joined(separator: "; "),
                        remedy: "the daemon quarantines a damaged file it writes by itself; for another, stop "
                            + "writing to it, salvage its rows (horgosctl shards salvage FILE) or restore it from a "
                            + "backup (RUNBOOK.md, \"A region is quarantined\")")
                }
            }
            result.append(entry)
        }
        guard !result.isEmpty else {
            throw CtlError(
                .notFound,
                "no shard files for \(region.map { "region \($0.uppercased())" } ?? "any configured region") in "
                    + context.stateDirectory,
                remedy: "check --state (or state_directory in the configuration)")
        }
        if context.json {
            try Console.json(Report(regions: result, ok: firstProblem == nil))
        } else {
            render(result)
        }
        if let firstProblem { throw firstProblem }
    }

    private func render(_ regions: [RegionShards]) {
        var columns: [TextTable.Column] = [
            .init("REGION"), .init("FILE"), .init("ROWS", numeric: true), .init("BYTES", numeric: true),
            .init("FIRST RECORD"), .init("LAST RECORD"),
        ]
        if check { columns.append(.init("CHECK")) }
        var table = TextTable(columns)
        var totalBytes: Int64 = 0
        var totalRows = 0
        for region in regions {
            let checks = Dictionary((region.integrity ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            var names = Set<String>()
            for file in region.files {
                names.insert(file.name)
                totalBytes += file.bytes
                if file.kind == "telemetry" { totalRows += file.rows }
                var row = [
                    region.region, file.name, "\(file.rows)", Format.bytes(file.bytes),
                    Format.time(file.firstRecordMs), Format.time(file.lastRecordMs),
                ]
                if check { row.append(checks[file.name].map(Self.verdict) ?? "-") }
                table.append(row)
            }
            // Files the inventory could not read still get their check verdict.
            for report in region.integrity ?? [] where !names.contains(report.name) {
                table.append([region.region, report.name, "?", "?", "-", "-", Self.verdict(report)])
            }
            for file in region.quarantined {
                var row = [
                    region.region, file.name, "-", Format.bytes(file.bytes), "QUARANTINED",
                    Format.time(file.quarantinedAtMs),
                ]
                if check { row.append("-") }
                table.append(row)
            }
            if let error = region.error { table.append([region.region, "(unreadable)", "", "", "", "", error]) }
        }
        table.style = { _, column, text in
            guard column == 6 else { return text }
            return text.hasPrefix("ok") ? Console.green(text) : Console.red(text)
        }
        Console.out(table.render())
        Console.line("\(regions.count) region(s), \(totalRows) telemetry rows, \(Format.bytes(totalBytes))")
        let quarantined = regions.reduce(0) { $0 + $1.quarantined.count }
        if quarantined > 0 {
            Console.line(
                "\(quarantined) quarantined file(s): damaged files moved aside; salvage their rows with "
                    + "horgosctl shards salvage FILE (Deploy/RUNBOOK.md 'A region is quarantined')")
        }
    }

    private static func verdict(_ report: IntegrityReport) -> String {
        report.ok ? "ok" : "FAILED: " + (report.messages.first ?? "")
    }
}
