import ArgumentParser
import Foundation
import HorgosStore

/// `horgosctl journal check|salvage`: the ingest journal read past damage (`JournalMaintenance`).
struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Check the ingest journal for damage; salvage every intact entry of a damaged one.",
        subcommands: [JournalCheckCommand.self, JournalSalvageCommand.self])
}

/// `horgosctl journal check`: damage by segment and offset, and which regions have applied past it.
struct JournalCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "List journal damage by segment and offset, and the regions that have applied past it.",
        discussion: """
            Reads every segment of <state>/journal (read-only; safe while the daemon runs). A torn tail \
            (the end of the newest segment, a write a crash interrupted) is listed but is no problem: a \
            start cuts it. Exit 0 when a start would accept the journal, 5 when it holds damage or a \
            missing segment (then: horgosctl journal salvage, with the daemon stopped).
            """)

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try await global.context()
        try context.requireStateDirectory()
        let report: JournalCheckReport
        do throws(StoreError) {
            report = try JournalMaintenance.check(stateDirectory: context.stateDirectory, regions: context.regions)
        } catch {
            throw CtlError(.failure, "cannot read the journal: \(error)", remedy: "check --state and permissions")
        }
        if context.json {
            try Console.json(report)
        } else {
            Self.render(report)
        }
        guard report.ok else {
            throw CtlError(
                .dataProblem, "the journal holds damage a start refuses",
                remedy: "stop horgosd, keep a copy of \(report.directory), then run horgosctl journal salvage "
                    + "(RUNBOOK.md, \"Journal damaged\")")
        }
    }

    static func render(_ report: JournalCheckReport) {
        var segments = TextTable([
            .init("SEGMENT"), .init("FIRST LSN", numeric: true), .init("LAST LSN", numeric: true),
            .init("ENTRIES", numeric: true), .init("BYTES", numeric: true), .init("NOTE"),
        ])
        for segment in report.segments {
            let note = !segment.headerValid ? "HEADER DAMAGED" : segment.followsGap ? "follows a gap" : ""
            segments.append([
                segment.name, "\(segment.firstLSN)", "\(segment.lastLSN)", "\(segment.entries)",
                Format.bytes(Int64(segment.bytes)), note,
            ])
        }
        Console.out(segments.render())
        if report.damage.isEmpty && report.gaps.isEmpty {
            Console.line("no damage in \(report.segments.count) segment(s)")
            return
        }
        var damage = TextTable([
            .init("SEGMENT"), .init("OFFSET", numeric: true), .init("BYTES", numeric: true),
            .init("LOST LSNS"), .init("APPLIED PAST IT"), .init("NOT APPLIED PAST IT"),
        ])
        for entry in report.damage {
            let lost: String
            if entry.tornTail {
                lost = "torn tail (cut at start)"
            } else if let resumes = entry.resumesAtLSN, let count = entry.lostEntries {
                lost = count == 0 ? "none" : "\(entry.afterLSN + 1)...\(resumes - 1) (\(count))"
            } else {
                lost = "after \(entry.afterLSN)"
            }
            damage.append([
                entry.segment, "\(entry.offset)", "\(entry.length)", lost,
                entry.regionsAppliedPast.joined(separator: " "), entry.regionsNotAppliedPast.joined(separator: " "),
            ])
        }
        Console.out(damage.render())
        for gap in report.gaps {
            Console.line(
                "LSNs \(gap.afterLSN + 1)...\(gap.beforeLSN - 1) are in no segment"
                    + (gap.accepted ? " (accepted: the next segment follows a gap)" : ": A SEGMENT IS MISSING"))
        }
    }
}

/// `horgosctl journal salvage`: keeps every intact entry of a damaged journal (the daemon stopped).
struct JournalSalvageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "salvage",
        abstract: "Rewrite damaged journal segments keeping every intact entry (stop horgosd first).",
        discussion: """
            Each damaged segment is copied to --backup (default <state>/journal-damaged-<ms>) and rewritten \
            as one segment per run of valid entries, re-framed from the next valid entry header: only the \
            damaged bytes are dropped, and no entry is lost from a region that had applied past them. LSNs \
            are never reused: the next start begins past the highest LSN ever written. Takes the journal's \
            lock: exit 1 while horgosd runs. Prints what was kept and which regions may miss entries.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Where the original damaged segments are copied first.", valueName: "dir"))
    var backup: String?

    func run() async throws {
        let context = try await global.context()
        try context.requireStateDirectory()
        let report: JournalSalvageReport
        do throws(StoreError) {
            report = try JournalMaintenance.salvage(
                stateDirectory: context.stateDirectory, regions: context.regions, backupDirectory: backup)
        } catch where error.kind == .inUse {
            throw CtlError(.failure, error.message, remedy: "systemctl stop horgosd, then run this again")
        } catch {
            throw CtlError(.failure, "salvage failed: \(error)", remedy: "check free space and permissions")
        }
        if context.json {
            try Console.json(report)
            return
        }
        JournalCheckCommand.render(report.before)
        if report.segmentsReplaced.isEmpty && report.segmentsMarkedFollowingGap.isEmpty {
            Console.line("nothing to salvage")
            return
        }
        Console.line(
            "salvaged: \(report.segmentsReplaced.joined(separator: ", ")) rewritten as "
                + "\(report.segmentsWritten.joined(separator: ", ")); \(report.entriesKept) entries kept, "
                + "\(report.bytesDropped) damaged bytes dropped; originals in \(report.backupDirectory ?? "-")")
        if !report.segmentsMarkedFollowingGap.isEmpty {
            Console.line("accepted the LSN gap before: \(report.segmentsMarkedFollowingGap.joined(separator: ", "))")
        }
        Console.line(
            report.regionsMissingEntries.isEmpty
                ? "every region had applied past the damage: nothing acknowledged is lost"
                : "regions that had not applied past the damage (records of theirs in it are lost unless their "
                    + "units still hold them): \(report.regionsMissingEntries.joined(separator: " "))")
    }
}
