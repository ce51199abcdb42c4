import ArgumentParser
import Foundation
import HorgosAudit
import HorgosConfig
import HorgosStore
import HorgosWire

/// `horgosctl prune`: applies retention now, deleting whole day partitions that have expired.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Apply retention now: delete day partitions older than each region's retention.",
        discussion: """
            Deletes <state>/<CC>/telemetry-YYYY-MM-DD.sqlite (with its -wal and -shm) when the day is older \
            than the retention AND ended more than store.late_horizon_days plus one day ago: the daemon \
            never writes such a day again, so this is safe while it runs. The registry and every other file \
            are never touched. The daemon applies the same retention by itself once a minute; prune is for \
            freeing space at once, for example after lowering the retention (--older-than). Each region's \
            retention is policy.<CC>.retention_days, else store.retention_days. A prune that deletes (not \
            --dry-run) is recorded in the audit log.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this region.", valueName: "CC"))
    var region: String?

    @Option(
        help: ArgumentHelp(
            "Retention to apply instead of store.retention_days, in days (90d, or a plain number of days).",
            valueName: "days"))
    var olderThan: String?

    @Flag(help: "List what would be deleted, delete nothing.")
    var dryRun = false

    /// The JSON document.
    struct Report: Encodable {
        var asOfMs: Int64
        /// The retention of every region pruned (they may differ: policy.<CC>.retention_days).
        var retentionDaysByRegion: [String: Int]
        /// The one retention in force when every region has the same, else nil.
        var retentionDays: Int?
        var lateHorizonDays: Int
        var dryRun: Bool
        var pruned: [PrunedPartition]
        var bytes: Int64
    }

    func run() async throws {
        let retentionOverride = try olderThan.map { text throws(CtlError) -> Int in
            let digits = text.hasSuffix("d") ? String(text.dropLast()) : text
            guard let days = Int(digits), days >= 1 else {
                throw CtlError(
                    .badArguments, "--older-than \"\(text)\" is not a whole number of days",
                    remedy: "use for example --older-than 90d (at least 1 day)")
            }
            return days
        }
        let context = try await global.context()
        let regions = try context.regions(region)
        try context.requireStateDirectory()
        let store = context.configuration.store
        var retention: [String: Int] = [:]
        for region in regions {
            retention[region.code] = retentionOverride ?? context.configuration.policy(for: region.code).retentionDays
        }
        let now = CtlClock.nowMs()
        var arguments = ["retention": retentionOverride.map { "\($0) days (--older-than)" } ?? "per region policy"]
        if let region { arguments["region"] = region.uppercased() }
        let trail = dryRun ? nil : try AuditTrail(context, action: "prune", arguments: arguments)
        var pruned: [PrunedPartition] = []
        for region in regions {
            let policy = RetentionPolicy(
                retentionDays: retention[region.code]!,
                lateHorizonMs: Int64(store.lateHorizonDays) * UTCDay.millisecondsPerDay)
            do throws(StoreError) {
                pruned += try context.reader(region).pruneExpiredPartitions(policy: policy, nowMs: now, dryRun: dryRun)
            } catch {
                let failure = CtlError(
                    .failure, "cannot delete an expired partition of \(region.code): \(error.description)",
                    remedy: "run as the daemon's user (sudo -u horgos horgosctl prune); nothing else was changed")
                try? trail?.record(
                    .failed, failure.problem + "; deleted before: " + pruned.map { "\($0.region)/\($0.name)" }.joined(separator: " "))
                throw failure
            }
        }
        let bytes = pruned.reduce(0) { $0 + $1.bytes }
        try trail?.record(
            .ok,
            pruned.isEmpty
                ? "nothing expired" : "\(pruned.count) day files (\(bytes) bytes): "
                    + pruned.map { "\($0.region)/\($0.day)" }.joined(separator: " "))
        let uniform = Set(retention.values).count == 1 ? retention.values.first : nil
        if context.json {
            try Console.json(
                Report(
                    asOfMs: now, retentionDaysByRegion: retention, retentionDays: uniform,
                    lateHorizonDays: store.lateHorizonDays, dryRun: dryRun, pruned: pruned, bytes: bytes))
            return
        }
        let retentionText = uniform.map { "\($0) day(s)" } ?? "each region's retention"
        if pruned.isEmpty {
            Console.line(
                "nothing to prune: no partition older than \(retentionText) in "
                    + "\(regions.count) region(s)"
            )
            return
        }
        var table = TextTable([.init("REGION"), .init("DAY"), .init("FILE"), .init("BYTES", numeric: true)])
        for entry in pruned { table.append([entry.region, entry.day, entry.name, Format.bytes(entry.bytes)]) }
        Console.out(table.render())
        Console.line(
            (dryRun ? "would delete" : "deleted") + " \(pruned.count) partition(s), \(Format.bytes(bytes)) "
                + "(retention \(retentionText), as of \(Format.time(now)))")
    }
}
