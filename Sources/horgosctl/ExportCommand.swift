import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl export`: streams a region's records of a time range to stdout as CSV or JSON lines.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Stream a region's telemetry records of a time range to stdout (CSV or JSON lines).",
        discussion: """
            Rows are read one at a time from each day partition (oldest day first, arrival order inside a \
            day) and written as they come: memory stays flat whatever the range. Units are in the column \
            names; an empty CSV field or a JSON null means "not available". --json selects JSON lines \
            unless --format says otherwise. The row count goes to stderr. Exit 4 when the range holds no record.
            """)

    /// The output formats.
    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case csv, jsonl
    }

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The region to export.", valueName: "CC"))
    var region: String

    @Option(
        help: ArgumentHelp("Start, inclusive. " + TimeArgument.accepted, valueName: "time"),
        transform: TimeArgument.parse)
    var from: TimeArgument

    @Option(help: ArgumentHelp("End, exclusive.", valueName: "time"), transform: TimeArgument.parse)
    var to: TimeArgument

    @Option(help: "csv (default) or jsonl (default with --json).")
    var format: OutputFormat?

    static let columns = [
        "vin", "time", "timestamp_ms", "latitude", "longitude", "odometer_km", "speed_kmh", "heading_deg",
        "pack_voltage_v", "pack_current_a", "soc_percent", "max_cell_temp_c", "min_cell_temp_c", "max_alarm_level",
        "status", "aux_battery_v", "alarm_flags", "remaining_range_km",
    ]

    func run() async throws {
        let context = try await global.context()
        let region = try context.region(self.region)
        let now = CtlClock.nowMs()
        let fromMs = from.epochMs(nowMs: now)
        let toMs = to.epochMs(nowMs: now)
        guard fromMs < toMs else {
            throw CtlError(
                .badArguments, "--from \(Format.time(fromMs)) is not before --to \(Format.time(toMs))",
                remedy: "give a range whose start is before its end")
        }
        try context.requireStateDirectory()
        let format = self.format ?? (context.json ? .jsonl : .csv)
        let reader = context.reader(region)
        var output = RowWriter()
        if format == .csv { output.append(Self.columns.joined(separator: ",") + "\n") }
        let rows: Int
        do {
            rows = try reader.exportRows(fromMs: fromMs, toMs: toMs) { row in
                switch format {
                case .csv: output.append(Self.csv(row))
                case .jsonl: output.append(Self.jsonLine(row))
                }
            }
        } catch let error as StoreError {
            output.flush()
            throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
        }
        output.flush()
        guard rows > 0 else {
            throw CtlError(
                .notFound,
                "no records of region \(region.code) between \(Format.time(fromMs)) and \(Format.time(toMs))",
                remedy: "widen the range; horgosctl shards --region \(region.code) shows the time range of each day")
        }
        if !context.json { Console.error("exported \(rows) record(s) of \(region.code)") }
    }

    private static func values(_ row: ExportRow) -> [String?] {
        let p = row.point
        func f<T: BinaryInteger>(_ value: T?, _ scale: Int = 0) -> String? {
            value.map { Format.fixed(Int64($0), scale) }
        }
        return [
            nil, nil, String(p.timestampMs), f(p.latitudeE7, 7), f(p.longitudeE7, 7), f(p.odometerHm, 1),
            f(p.speedDkmh, 1), f(p.headingCdeg, 2), f(p.packVoltageDv, 1), f(p.packCurrentDa, 1), f(p.soc),
            f(p.maxCellTemp), f(p.minCellTemp), f(p.maxAlarmLevel), String(p.status), f(p.auxBatteryCv, 2),
            String(p.alarmFlags), f(p.remainingRangeKm),
        ]
    }

    static func csv(_ row: ExportRow) -> String {
        var fields = values(row)
        fields[0] = row.vin
        fields[1] = Format.time(row.point.timestampMs)
        return fields.map { $0 ?? "" }.joined(separator: ",") + "\n"
    }

    static func jsonLine(_ row: ExportRow) -> String {
        var fields = values(row)
        fields[0] = "\"\(row.vin)\""
        fields[1] = "\"\(Format.time(row.point.timestampMs))\""
        var line = "{"
        for (index, name) in columns.enumerated() {
            if index > 0 { line += "," }
            line += "\"\(name)\":\(fields[index] ?? "null")"
        }
        return line + "}\n"
    }
}

/// Buffers output rows and writes them to stdout in 64 KiB blocks.
struct RowWriter {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        Console.writeAll(fd: 1, buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
