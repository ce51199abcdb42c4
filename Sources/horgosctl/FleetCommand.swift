import ArgumentParser
import Foundation
import HorgosStore

/// `horgosctl fleet`: fleet health per region, from each region's registry.
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Fleet health per region: vehicles, reporting, silent, alarms, low charge, over-temperature.",
        discussion: """
            Counts come from each region's registry (one row per vehicle), as of now: reporting = a record \
            in the last hour, silent = none for over 24 h, alarms = an alarm level >= 1, an alarm flag or an \
            active DTC. Regions without any stored data are left out; exit 4 when no region has data. \
            With --node URL repeated (or nodes: in the configuration) each node's admin endpoint is asked \
            for its own shards' fleet health (GET /fleet) and the answers are merged, one row per region \
            with a node column; a node that does not answer is shown as such and makes the exit status 3.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this region (ISO 3166-1 alpha-2 code, must be configured).", valueName: "CC"))
    var region: String?

    @Option(help: "Low charge: latest SOC below this percentage.")
    var lowSoc = 10

    @Option(help: "Over-temperature: latest maximum cell temperature above this (°C).")
    var maxCellTemp = 55

    @Option(help: "Seconds to wait for each node (with --node).")
    var timeout = 5

    /// The JSON document.
    struct Report: Encodable {
        var asOfMs: Int64
        var asOf: String
        var regions: [FleetHealth]
        var totals: Totals
    }

    /// Sums over the listed regions.
    struct Totals: Encodable {
        var vehiclesTotal = 0
        var reportingLastHour = 0
        var silentOver24h = 0
        var withActiveAlarms = 0
        var lowSOC = 0
        var overTemperature = 0
    }

    func run() async throws {
        let context = try await global.context()
        if !context.nodes.isEmpty {
            try await FleetWide.fleet(
                context, region: region, lowSOC: lowSoc, maxCellTemp: maxCellTemp, timeoutSeconds: max(1, timeout))
            return
        }
        let regions = try context.regions(region)
        try context.requireStateDirectory()
        let now = CtlClock.nowMs()
        var rows: [FleetHealth] = []
        for region in regions {
            do throws(StoreError) {
                rows.append(
                    try context.reader(region).fleetHealth(
                        asOfMs: now, lowSOCPercent: lowSoc, maxCellTempThresholdC: maxCellTemp))
            } catch {
                if error.kind == .notFound { continue }
                throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
            }
        }
        guard !rows.isEmpty else {
            throw CtlError(
                .notFound,
                "no fleet data for \(region.map { "region \($0.uppercased())" } ?? "any configured region") in "
                    + context.stateDirectory,
                remedy: "check --state (or state_directory in the configuration) and that horgosd has stored records")
        }
        var totals = Totals()
        for row in rows {
            totals.vehiclesTotal += row.vehiclesTotal
            totals.reportingLastHour += row.reportingLastHour
            totals.silentOver24h += row.silentOver24h
            totals.withActiveAlarms += row.withActiveAlarms
            totals.lowSOC += row.lowSOC
            totals.overTemperature += row.overTemperature
        }
        if context.json {
            try Console.json(Report(asOfMs: now, asOf: Format.time(now), regions: rows, totals: totals))
            return
        }
        var table = TextTable([
            .init("REGION"), .init("VEHICLES", numeric: true), .init("REPORTING 1H", numeric: true),
            .init("SILENT >24H", numeric: true), .init("ALARMS", numeric: true),
            .init("SOC <\(lowSoc)%", numeric: true), .init("CELLS >\(maxCellTemp)°C", numeric: true),
            .init("AVG SOC", numeric: true),
        ])
        for row in rows {
            table.append([
                row.region, "\(row.vehiclesTotal)", "\(row.reportingLastHour)", "\(row.silentOver24h)",
                "\(row.withActiveAlarms)", "\(row.lowSOC)", "\(row.overTemperature)",
                row.averageSOC.map { String(format: "%.1f%%", $0) } ?? "-",
            ])
        }
        if rows.count > 1 {
            table.append([
                "total", "\(totals.vehiclesTotal)", "\(totals.reportingLastHour)", "\(totals.silentOver24h)",
                "\(totals.withActiveAlarms)", "\(totals.lowSOC)", "\(totals.overTemperature)", "",
            ])
        }
        let alertColumns: Set<Int> = [3, 4, 5, 6]
        table.style = { _, column, text in
            alertColumns.contains(column) && text.trimmingCharacters(in: .whitespaces) != "0"
                ? Console.yellow(text)
                : text
        }
        Console.out(table.render())
        Console.line("as of \(Format.time(now)); \(rows.count) region(s)")
    }
}
