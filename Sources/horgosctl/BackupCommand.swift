import ArgumentParser
import Foundation
import HorgosAudit
import HorgosConfig
import HorgosStore
import HorgosWire

/// What a backup directory holds: `<dir>/manifest.json` beside `<dir>/<CC>/*.sqlite`.
///
/// Written last (to a temporary name, then renamed), so a directory whose manifest names a file
/// holds a finished copy of it. The coverage rule is in `covers`.
struct BackupManifest: Codable {
    /// One copied shard file.
    struct File: Codable {
        var name: String
        /// The partition's UTC day (`2026-12-03`); nil for the registry.
        var day: String?
        /// A day the daemon never writes again (older than store.late_horizon_days plus a day):
        /// copied once, then kept from the earlier backup in the same directory.
        var sealed: Bool
        var bytes: Int64
        /// When this copy was taken (ms since the epoch); older than the backup when `reused`.
        var copiedAtMs: Int64
        /// Kept from an earlier backup into the same directory (a sealed day copied before).
        var reused: Bool
        /// The file's `meta` table (kind, region, range; an applied journal position if the store keeps one).
        var meta: [String: String]
    }

    /// One region's files.
    struct Region: Codable {
        var region: String
        var files: [File]
    }

    var format = 1
    /// The node that took the backup (its host name).
    var node: String
    /// The regions that node served (its `regions:`); nil in backups from before issue 22.
    var nodeRegions: [String]?
    /// Regions the node served that the backup leaves out, each with why (`policy.<CC>.backup: false`).
    var excludedRegions: [Excluded]?
    var stateDirectory: String
    var startedAtMs: Int64
    var startedAt: String
    var finishedAtMs: Int64
    var covers: String
    var regions: [Region]

    static let fileName = "manifest.json"

    /// A served region a backup did not copy.
    struct Excluded: Codable {
        var region: String
        var reason: String
    }

    static func read(from directory: String) -> BackupManifest? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(fileName)") else { return nil }
        return try? JSONDecoder().decode(BackupManifest.self, from: data)
    }
}

/// `horgosctl backup --to DIR`: consistent online copies of every shard of this node.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy every shard of this node into DIR while horgosd runs (consistent per file).",
        discussion: """
            Each file is copied with SQLite's VACUUM INTO from a read-only connection: a consistent \
            snapshot of that file, taken without stopping or slowing the writer. Sealed days (older than \
            store.late_horizon_days plus one day: the daemon never writes them again) are copied once and \
            kept on later backups into the same DIR; the registry and open days are copied every time. \
            DIR/manifest.json records what was copied, when, and each file's meta table. The copy holds \
            every record committed to the shards before the backup started; with an ingest journal, records \
            acknowledged but not yet applied are in the journal, not in the copy (see Deploy/RUNBOOK.md). \
            Restore with horgosctl restore --from DIR.

            A region whose policy forbids it (policy.<CC>.backup: false) is left out and named in the \
            manifest's excludedRegions; --region naming such a region is refused. The manifest names the \
            node, the regions it served and the time. Every backup is recorded in the audit log.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Backup directory (created if missing).", valueName: "dir"))
    var to: String

    @Option(help: ArgumentHelp("Only this region.", valueName: "CC"))
    var region: String?

    func run() async throws {
        let context = try await global.context()
        let asked = try context.regions(region)
        var excluded: [BackupManifest.Excluded] = []
        for region in asked where !context.configuration.policy(for: region.code).backup {
            if self.region != nil {
                throw CtlError(
                    .badArguments,
                    "region \(region.code) must not leave this node through backups (policy.\(region.code).backup: false)",
                    remedy: "back it up only where its law allows (change the policy in the configuration first)")
            }
            excluded.append(.init(region: region.code, reason: "policy.\(region.code).backup: false"))
        }
        let regions = asked.filter { region in !excluded.contains { $0.region == region.code } }
        try context.requireStateDirectory()
        var arguments = ["to": to]
        if let region { arguments["region"] = region.uppercased() }
        let trail = try AuditTrail(context, action: "backup", arguments: arguments)
        let (manifest, manifestRegions) = try await trail.run { () throws -> ((BackupManifest, [BackupManifest.Region]), String) in
            let result = try backup(context, regions: regions, excluded: excluded)
            let files = result.1.reduce(0) { $0 + $1.files.count }
            return (
                result,
                "\(files) files of \(result.1.map(\.region).joined(separator: ",")) into \(to)"
                    + (excluded.isEmpty ? "" : "; left out by policy: \(excluded.map(\.region).joined(separator: ","))")
            )
        }
        if context.json {
            try Console.json(manifest)
            return
        }
        var table = TextTable([
            .init("REGION"), .init("FILES", numeric: true), .init("COPIED", numeric: true),
            .init("KEPT (SEALED)", numeric: true), .init("BYTES", numeric: true),
        ])
        for entry in manifestRegions {
            let reused = entry.files.filter(\.reused).count
            table.append([
                entry.region, "\(entry.files.count)", "\(entry.files.count - reused)", "\(reused)",
                "\(entry.files.reduce(Int64(0)) { $0 + $1.bytes })",
            ])
        }
        Console.out(table.render())
        for entry in excluded { Console.line("left out: \(entry.region) (\(entry.reason))") }
        Console.line("backup of \(manifestRegions.count) region(s) in \(to), started \(manifest.startedAt)")
    }

    /// Copies `regions` into `--to` and writes the manifest.
    private func backup(
        _ context: CtlContext, regions: [HorgosWire.Region], excluded: [BackupManifest.Excluded]
    ) throws(CtlError) -> (BackupManifest, [BackupManifest.Region]) {
        let started = CtlClock.nowMs()
        do {
            try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
        } catch {
            throw CtlError(.failure, "cannot create \(to): \(error)", remedy: "choose a writable --to directory")
        }
        let previous = BackupManifest.read(from: to)
        let lateHorizonMs = Int64(context.configuration.store.lateHorizonDays) * UTCDay.millisecondsPerDay
        var manifestRegions: [BackupManifest.Region] = []
        for region in regions {
            let files = ShardBackup.files(stateDirectory: context.stateDirectory, region: region)
            guard !files.isEmpty else { continue }
            let earlier = previous?.regions.first { $0.region == region.code }
            var copied: [BackupManifest.File] = []
            for file in files {
                let sealed = file.day.map { ($0.dayNumber + 2) * UTCDay.millisecondsPerDay + lateHorizonMs <= started }
                    ?? false
                if sealed, var kept = earlier?.files.first(where: { $0.name == file.name && $0.sealed }),
                    FileManager.default.fileExists(atPath: "\(to)/\(region.code)/\(file.name)")
                {
                    kept.reused = true
                    copied.append(kept)
                    continue
                }
                do throws(StoreError) {
                    let copy = try ShardBackup.copy(
                        stateDirectory: context.stateDirectory, region: region, file: file.name, to: to)
                    copied.append(
                        BackupManifest.File(
                            name: file.name, day: file.day.map { Format.time($0.startMs).prefix(10).description },
                            sealed: sealed, bytes: copy.bytes, copiedAtMs: CtlClock.nowMs(), reused: false,
                            meta: copy.meta))
                } catch {
                    throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
                }
            }
            manifestRegions.append(BackupManifest.Region(region: region.code, files: copied))
        }
        guard !manifestRegions.isEmpty else {
            throw CtlError(
                .notFound, "no shard files under \(context.stateDirectory) for the regions asked",
                remedy: "check --state (or state_directory) and --region")
        }
        let manifest = BackupManifest(
            node: ProcessInfo.processInfo.hostName, nodeRegions: context.configuration.regions,
            excludedRegions: excluded.isEmpty ? nil : excluded, stateDirectory: context.stateDirectory,
            startedAtMs: started, startedAt: Format.time(started), finishedAtMs: CtlClock.nowMs(),
            covers: "every record committed to the shards before startedAt, each file a consistent snapshot "
                + "taken between startedAt and finishedAt",
            regions: manifestRegions)
        try Self.write(manifest, to: to)
        return (manifest, manifestRegions)
    }

    static func write(_ manifest: BackupManifest, to directory: String) throws(CtlError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = "\(directory)/\(BackupManifest.fileName)"
        do {
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: path + ".partial"))
            if FileManager.default.fileExists(atPath: path) {
                _ = try FileManager.default.replaceItemAt(
                    URL(fileURLWithPath: path), withItemAt: URL(fileURLWithPath: path + ".partial"))
            } else {
                try FileManager.default.moveItem(atPath: path + ".partial", toPath: path)
            }
        } catch {
            throw CtlError(.failure, "cannot write \(path): \(error)", remedy: "check the space and rights in --to")
        }
    }
}

/// `horgosctl restore --from DIR`: puts a backup's shard files into a state directory.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put the shard files of a backup (horgosctl backup) into the state directory.",
        discussion: """
            Copies DIR/<CC>/*.sqlite named by DIR/manifest.json into <state>/<CC>/, checks each copy with \
            PRAGMA quick_check, and refuses a region whose directory already holds shard files (restore into \
            a fresh state directory, or move the old one aside). horgosd must not be running on that \
            state directory for those regions; start it afterwards and it opens the restored shards.

            Residency: a region this node does not serve (not in regions: of its configuration) is refused \
            before anything is copied, naming the region and the node's regions: a market's data is restored \
            only on a node that serves that market. Every restore is recorded in the audit log. A vehicle \
            erased after the backup was taken is in the backup: the restore names every VIN the audit log \
            records as erased since (erase them again once horgosd runs).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Backup directory (with manifest.json).", valueName: "dir"))
    var from: String

    @Option(help: ArgumentHelp("Only this region.", valueName: "CC"))
    var region: String?

    func run() async throws {
        let context = try await global.context()
        guard let manifest = BackupManifest.read(from: from) else {
            throw CtlError(
                .notFound, "\(from)/\(BackupManifest.fileName) is missing or unreadable",
                remedy: "pass --from the directory horgosctl backup --to wrote")
        }
        let wanted = region?.uppercased()
        let entries = manifest.regions.filter { wanted == nil || $0.region == wanted }
        guard !entries.isEmpty else {
            throw CtlError(
                .notFound, "the backup in \(from) has no region \(wanted ?? "")",
                remedy: "it holds " + manifest.regions.map(\.region).joined(separator: " "))
        }
        let served = context.configuration.regions
        let foreign = entries.map(\.region).filter { !served.contains($0) }
        var arguments = ["from": from, "backup_node": manifest.node, "backup_started": manifest.startedAt]
        if let wanted { arguments["region"] = wanted }
        // A restore into a fresh state directory records itself in that directory's audit log.
        try? FileManager.default.createDirectory(atPath: context.stateDirectory, withIntermediateDirectories: true)
        let trail = try AuditTrail(context, action: "restore", arguments: arguments)
        guard foreign.isEmpty else {
            let error = CtlError(
                .badArguments,
                "restore refused: the backup in \(from) holds region \(foreign.joined(separator: ", ")), which this node "
                    + "does not serve; this node serves \(served.joined(separator: " "))",
                remedy: "restore a region only on a node that serves it (its data must stay where its market's law "
                    + "wants it); pass --region with one of this node's regions, or run the restore on the region's node")
            try? trail.record(.refused, error.problem)
            throw error
        }
        let fileManager = FileManager.default
        for entry in entries {
            let target = "\(context.stateDirectory)/\(entry.region)"
            let existing = (try? fileManager.contentsOfDirectory(atPath: target))?.filter { $0.hasSuffix(".sqlite") }
            if let existing, !existing.isEmpty {
                throw CtlError(
                    .badArguments, "\(target) already holds \(existing.count) shard file(s)",
                    remedy: "restore into a fresh --state directory, or stop horgosd and move \(target) aside")
            }
        }
        let table = try await trail.run { () throws -> (TextTable, String) in
            let table = try restore(context, entries: entries)
            return (table, "\(entries.count) region(s) \(entries.map(\.region).joined(separator: ",")) into \(context.stateDirectory)")
        }
        let eraseAgain = Self.erasedSince(
            manifest.startedAtMs, regions: Set(entries.map(\.region)), auditPath: trail.log.path)
        if context.json {
            try Console.json([
                "restored": entries.map(\.region), "from": [from], "startedAt": [manifest.startedAt],
                "eraseAgain": eraseAgain,
            ])
            return
        }
        Console.out(table.render())
        Console.line(
            "restored \(entries.count) region(s) into \(context.stateDirectory) from the backup of \(manifest.startedAt)")
        for vin in eraseAgain {
            Console.error(
                "note: \(vin) was erased after this backup was taken and is back in the restored shards; "
                    + "erase it again: horgosctl erase \(vin) --reason \"again after the restore of \(manifest.startedAt)\"")
        }
    }

    /// VINs the audit log records as erased (journaled or done) after `ms` in one of `regions`: the
    /// restored backup still holds them.
    static func erasedSince(_ ms: Int64, regions: Set<String>, auditPath: String) -> [String] {
        let erased = AuditLog.records(path: auditPath).filter { record in
            record.action == "erase" && (record.outcome == .ok || record.outcome == .pending) && record.timeMs > ms
                && !Set((record.arguments["regions"] ?? "").split(separator: ",").map(String.init)).isDisjoint(with: regions)
        }
        return Array(Set(erased.compactMap { $0.arguments["vin"] })).sorted()
    }

    /// Copies and checks every file of `entries`; the table of what was restored.
    private func restore(_ context: CtlContext, entries: [BackupManifest.Region]) throws(CtlError) -> TextTable {
        let fileManager = FileManager.default
        var table = TextTable([.init("REGION"), .init("FILES", numeric: true), .init("BYTES", numeric: true)])
        for entry in entries {
            let target = "\(context.stateDirectory)/\(entry.region)"
            var bytes: Int64 = 0
            do {
                try fileManager.createDirectory(atPath: target, withIntermediateDirectories: true)
                for file in entry.files {
                    let destination = "\(target)/\(file.name)"
                    try fileManager.copyItem(
                        atPath: "\(from)/\(entry.region)/\(file.name)", toPath: destination + ".partial")
                    let sound = (try? ShardBackup.isSound(path: destination + ".partial")) ?? false
                    guard sound else {
                        try? fileManager.removeItem(atPath: destination + ".partial")
                        throw CtlError(
                            .dataProblem, "\(from)/\(entry.region)/\(file.name) fails SQLite's quick_check",
                            remedy: "restore that region from another backup")
                    }
                    try fileManager.moveItem(atPath: destination + ".partial", toPath: destination)
                    bytes += file.bytes
                }
            } catch let error as CtlError {
                throw error
            } catch {
                throw CtlError(.failure, "cannot restore into \(target): \(error)", remedy: "check space and rights")
            }
            table.append([entry.region, "\(entry.files.count)", "\(bytes)"])
        }
        return table
    }
}
