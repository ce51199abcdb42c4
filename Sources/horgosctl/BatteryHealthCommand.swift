import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl battery-health [VIN]`: cell-voltage spread, temperature spread and insulation trend
/// of GB/T 32960 vehicles over a time range: the early warning before a pack fails.
struct BatteryHealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "battery-health",
        abstract: "Cell-voltage spread, temperature spread and insulation trend of GB/T 32960 vehicles.",
        discussion: """
            With a VIN: that vehicle's samples in the range, oldest first. Without: one line per GB/T \
            32960 vehicle of each region (or --region), worst cell-voltage spread first. The spread is \
            max - min over the cells (or probes) one collection time reported; insulation is the \
            pack's resistance in kOhm (a falling trend is a leak). Exit 2 for bad arguments, 4 when \
            a VIN has no GB/T 32960 samples in the range.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only this vehicle (17 characters).")
    var vin: String?

    @Option(
        help: ArgumentHelp("Start of the range (default 7 days ago). " + TimeArgument.accepted, valueName: "time"),
        transform: TimeArgument.parse)
    var from: TimeArgument?

    @Option(help: ArgumentHelp("End of the range, exclusive (default now).", valueName: "time"), transform: TimeArgument.parse)
    var to: TimeArgument?

    @Option(help: ArgumentHelp("Only look in this region.", valueName: "CC"))
    var region: String?

    @Option(help: "Most samples shown for one VIN (the oldest ones).")
    var limit = 10_000

    /// One vehicle's summary over the range.
    struct VehicleSummary: Codable {
        var vin: String
        var region: String
        var samples: Int
        var lastMs: Int64
        var latestCellSpreadMv: Int?
        var maxCellSpreadMv: Int?
        var maxTemperatureSpreadC: Int?
        var firstInsulationKohm: Int?
        var lastInsulationKohm: Int?
        var minInsulationKohm: Int?
    }

    struct Report: Encodable {
        var fromMs: Int64
        var toMs: Int64
        var vin: String?
        var samples: [BatteryHealthSample]?
        var vehicles: [VehicleSummary]?
    }

    func run() async throws {
        let context = try await global.context()
        let regions = try context.regions(region)
        let now = CtlClock.nowMs()
        let fromMs = from?.epochMs(nowMs: now) ?? now - 7 * 86_400_000
        let toMs = to?.epochMs(nowMs: now) ?? now
        guard fromMs < toMs else {
            throw CtlError(
                .badArguments, "--from \(Format.time(fromMs)) is not before --to \(Format.time(toMs))",
                remedy: "give a range whose start is before its end")
        }
        guard limit > 0 else { throw CtlError(.badArguments, "--limit must be positive", remedy: "use --limit 1000") }
        let vin = try self.vin.map { (text) throws(CtlError) -> VIN in try CtlContext.vin(text) }
        try context.requireStateDirectory()
        var samples: [(Region, BatteryHealthSample)] = []
        for region in regions {
            do throws(StoreError) {
                samples += try context.reader(region).batteryHealth(vin, fromMs: fromMs, toMs: toMs).map { (region, $0) }
            } catch {
                if error.kind == .notFound { continue }
                throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
            }
        }
        if let vin {
            if samples.isEmpty {
                throw CtlError(
                    .notFound, "vehicle \(vin) has no GB/T 32960 samples from \(Format.time(fromMs)) to \(Format.time(toMs))",
                    remedy: "check the VIN and the range; only GB/T 32960 units report cell voltages")
            }
            let shown = Array(samples.prefix(limit).map(\.1))
            if context.json {
                try Console.json(Report(fromMs: fromMs, toMs: toMs, vin: vin.description, samples: shown))
                return
            }
            Console.line(Console.bold("Battery health of \(vin)") + " \(Format.time(fromMs)) .. \(Format.time(toMs)): "
                + "\(shown.count) sample(s)")
            var table = TextTable([
                .init("TIME"), .init("CELL MAX V", numeric: true), .init("CELL MIN V", numeric: true),
                .init("SPREAD mV", numeric: true), .init("TEMP SPREAD °C", numeric: true),
                .init("INSULATION kΩ", numeric: true),
            ])
            for s in shown {
                table.append([
                    Format.time(s.timestampMs), Format.optional(s.maxCellMv, scale: 3),
                    Format.optional(s.minCellMv, scale: 3), Format.optional(s.cellSpreadMv),
                    Format.optional(s.temperatureSpreadC), Format.optional(s.insulationKohm),
                ])
            }
            Console.out(table.render())
            return
        }
        let summaries = Self.summaries(samples)
        if context.json {
            try Console.json(Report(fromMs: fromMs, toMs: toMs, vehicles: summaries))
            return
        }
        Console.line(
            Console.bold("Battery health") + " \(Format.time(fromMs)) .. \(Format.time(toMs)): "
                + "\(summaries.count) GB/T 32960 vehicle(s) in \(regions.count) region(s)")
        guard !summaries.isEmpty else { return }
        var table = TextTable([
            .init("VIN"), .init("REGION"), .init("SAMPLES", numeric: true), .init("LAST"),
            .init("SPREAD mV", numeric: true), .init("MAX SPREAD mV", numeric: true),
            .init("MAX TEMP SPREAD °C", numeric: true), .init("INSULATION kΩ (first → last, min)"),
        ])
        for s in summaries {
            table.append([
                s.vin, s.region, "\(s.samples)", Format.time(s.lastMs), Format.optional(s.latestCellSpreadMv),
                Format.optional(s.maxCellSpreadMv), Format.optional(s.maxTemperatureSpreadC),
                "\(Format.optional(s.firstInsulationKohm)) → \(Format.optional(s.lastInsulationKohm)), "
                    + "min \(Format.optional(s.minInsulationKohm))",
            ])
        }
        Console.out(table.render())
    }

    /// One summary per vehicle, worst maximum cell-voltage spread first.
    static func summaries(_ samples: [(Region, BatteryHealthSample)]) -> [VehicleSummary] {
        var byVehicle: [String: VehicleSummary] = [:]
        for (region, s) in samples.sorted(by: { $0.1.timestampMs < $1.1.timestampMs }) {
            var v = byVehicle[s.vin] ?? VehicleSummary(vin: s.vin, region: region.code, samples: 0, lastMs: s.timestampMs)
            v.samples += 1
            v.lastMs = s.timestampMs
            if let spread = s.cellSpreadMv {
                v.latestCellSpreadMv = spread
                v.maxCellSpreadMv = max(v.maxCellSpreadMv ?? spread, spread)
            }
            if let spread = s.temperatureSpreadC { v.maxTemperatureSpreadC = max(v.maxTemperatureSpreadC ?? spread, spread) }
            if let insulation = s.insulationKohm {
                v.firstInsulationKohm = v.firstInsulationKohm ?? insulation
                v.lastInsulationKohm = insulation
                v.minInsulationKohm = min(v.minInsulationKohm ?? insulation, insulation)
            }
            byVehicle[s.vin] = v
        }
        return byVehicle.values.sorted { ($0.maxCellSpreadMv ?? -1, $1.vin) > ($1.maxCellSpreadMv ?? -1, $0.vin) }
    }
}
