import ArgumentParser
import Foundation
import HorgosAdminAPI
import HorgosConfig

/// `horgosctl status`: the live daemon's `/status` document, as tables or passed through as JSON.
///
/// The document is decoded as the daemon's own type (``DaemonStatus`` from HorgosAdminAPI), so a field
/// the daemon renames is a compile error here, not a silently empty column. Decoding is lenient: a daemon
/// of another version during an upgrade still gives a table (missing fields show their defaults).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The running daemon's status from its admin endpoint (GET /status).",
        discussion: """
            With --node URL repeated (or nodes: in the configuration) every node is asked and the answers \
            are merged, one row per region with its node; a node that does not answer gets a row of its \
            own and makes the exit status 3, the others are still shown. \
            Exit 3 when the admin endpoint does not answer: check that horgosd runs and that --admin (or \
            listen.admin in the configuration) is its address. --json prints the daemon's document as is.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Seconds to wait for the connection and for each read.")
    var timeout = 5

    func run() async throws {
        let context = try await global.context()
        if !context.nodes.isEmpty {
            try await FleetWide.status(context, timeoutSeconds: max(1, timeout))
            return
        }
        let response = try await AdminClient.get(context.admin, path: "/status", timeoutSeconds: max(1, timeout))
        guard (200..<300).contains(response.status) else {
            throw CtlError(
                .daemonUnreachable,
                "the admin endpoint \(context.admin) answered HTTP \(response.status) to GET /status: "
                    + String(decoding: response.body.prefix(200), as: UTF8.self),
                remedy: "check the daemon's journal (journalctl -u horgosd); it may be starting or stopping")
        }
        if context.json {
            Console.out(String(decoding: response.body, as: UTF8.self))
            if response.body.last != UInt8(ascii: "\n") { Console.line() }
            return
        }
        let status = try Self.decode(response.body, from: context.admin.description)
        Console.out(Self.render(status, source: context.admin.description))
    }

    /// The `/status` document, or exit 1 saying the answer is not one.
    static func decode(_ body: [UInt8], from source: String) throws(CtlError) -> DaemonStatus {
        do {
            return try DaemonStatus.decoder().decode(DaemonStatus.self, from: Data(body))
        } catch {
            throw CtlError(
                .failure, "the admin endpoint \(source) answered /status with something that is not a status "
                    + "document: \(error)",
                remedy: "check that --admin names horgosd's admin endpoint and not another service")
        }
    }

    /// The summary table (one field a row) and the table of regions.
    static func render(_ status: DaemonStatus, source: String) -> String {
        var summary = TextTable([.init("FIELD"), .init("VALUE")])
        var fields: [(String, String)] = [
            ("version", status.version),
            ("serving", status.serving ? "true" : "false"),
            ("started_at", ISO8601DateFormatter().string(from: status.startedAt)),
            ("uptime_seconds", String(status.uptimeSeconds)),
            ("connections", String(status.connections)),
        ]
        for (name, count) in status.connectionsByProtocol.sorted(by: { $0.key < $1.key }) {
            fields.append(("connections." + name, String(count)))
        }
        for (name, address) in status.listeners.sorted(by: { $0.key < $1.key }) {
            fields.append(("listeners." + name, address))
        }
        let degraded = status.degradedRegions.isEmpty ? "-" : status.degradedRegions.joined(separator: " ")
        fields += [
            ("frames_per_second", String(format: "%.1f", status.framesPerSecond)),
            ("records_per_second", String(format: "%.1f", status.recordsPerSecond)),
            ("queued_bytes", String(status.queuedBytes)),
            ("buffered_bytes", String(status.bufferedBytes)),
            ("degraded_regions", degraded),
        ]
        for client in status.clientAddresses {
            fields.append(("client." + client.address, String(client.connections)))
        }
        if let storage = status.storage {
            fields.append(("storage.disk_full", storage.diskFull ? "true (acknowledging nothing)" : "false"))
            fields.append(("storage.held_frames", String(storage.heldFrames)))
            fields.append(("storage.reserve_bytes", String(storage.reserveBytes)))
            fields.append(("storage.journal_bytes", String(storage.journalBytes)))
            if let failure = storage.journalFailure { fields.append(("storage.journal_failure", failure)) }
        }
        if let stream = status.stream {
            fields += [
                ("stream.state", stream.state), ("stream.server", stream.server ?? "-"),
                ("stream.name", stream.streamName), ("stream.node", stream.node),
                ("stream.durability", stream.durability), ("stream.published_lsn", String(stream.publishedLsn)),
                ("stream.published", String(stream.published)), ("stream.resends", String(stream.resends)),
                ("stream.outstanding", String(stream.outstanding)), ("stream.held_acks", String(stream.heldAcks)),
            ]
            if !stream.followedRegions.isEmpty {
                fields.append(("stream.followed_regions", stream.followedRegions.joined(separator: " ")))
            }
            if let error = stream.lastError { fields.append(("stream.last_error", error)) }
        }
        for (field, value) in fields { summary.append([field, value]) }
        summary.style = alarmStyle
        var output = Console.bold("horgosd at \(source)") + "\n" + summary.render()
        if !status.regions.isEmpty { output += "\n" + regionTable(status.regions).render() }
        return output
    }

    /// One row per region: state, queue, counters, apply lag, fault.
    static func regionTable(_ regions: [RegionStatus]) -> TextTable {
        var table = TextTable([.init("REGION")] + regionColumns)
        for region in regions { table.append([region.region] + regionCells(region)) }
        table.style = alarmStyle
        return table
    }

    /// The columns after REGION (and NODE) of a region row.
    static let regionColumns: [TextTable.Column] = [
        .init("STATE"), .init("QUEUED BYTES", numeric: true), .init("STORED", numeric: true),
        .init("DUPLICATES", numeric: true), .init("REJECTED", numeric: true), .init("EVENTS", numeric: true),
        .init("APPLY LAG"), .init("PUBLISH LAG"), .init("FOLLOW"), .init("FAULT"), .init("POLICY"),
    ]

    /// A region row's cells after REGION (and NODE).
    static func regionCells(_ region: RegionStatus) -> [String] {
        let fault = region.fault.map { fault in region.message.map { "\(fault): \($0)" } ?? fault } ?? "-"
        return [
            region.state, "\(region.queuedBytes)", "\(region.recordsStored)", "\(region.recordsDuplicate)",
            "\(region.recordsRejected)", "\(region.eventsStored)", String(format: "%.1f s", region.applyLagSeconds),
            publishLag(region), follow(region), fault, region.policy.map(policy) ?? "-",
        ]
    }

    /// The stream's publish lag of a region (`-` without a stream): entries, and `held` at `stream.max_lag_bytes`.
    static func publishLag(_ region: RegionStatus) -> String {
        guard let entries = region.publishLagEntries else { return "-" }
        let age = String(format: "%.1f s", region.publishLagSeconds ?? 0)
        return "\(entries) (\(age))" + (region.publishHeld == true ? " held" : "")
    }

    /// A followed region's state and lag in entries (`-` for a region this node does not follow).
    static func follow(_ region: RegionStatus) -> String {
        guard let state = region.followState else { return "-" }
        return region.followLagEntries.map { "\(state) \($0)" } ?? state
    }

    /// A region's policy (`/status` `regions[].policy`) in a few words: `30d no-stream no-backup pos=3`.
    static func policy(_ policy: RegionPolicy) -> String {
        var words = ["\(policy.retentionDays)d"]
        if !policy.stream { words.append("no-stream") }
        if !policy.backup { words.append("no-backup") }
        if policy.positionDecimals < 7 { words.append("pos=\(policy.positionDecimals)") }
        return words.joined(separator: " ")
    }

    /// Red for states an operator must look at.
    static func alarmStyle(_ row: Int, _ column: Int, _ text: String) -> String {
        let plain = text.trimmingCharacters(in: .whitespaces)
        return ["degraded", "failed", "stopped", "unreachable", "false"].contains { plain.hasPrefix($0) }
            ? Console.red(text) : text
    }
}
