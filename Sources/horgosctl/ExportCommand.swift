import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl export`: streams a region's records of a time range to stdout as CSV or JSON lines, or
/// (`--vin`) one vehicle's whole history across days and tables with its metadata.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Stream a region's records of a time range, or one vehicle's history (--vin), to stdout.",
        discussion: """
            --region CC --from T --to T: rows are read one at a time from each day partition (oldest day \
            first, arrival order inside a day) and written as they come: memory stays flat whatever the \
            range. Units are in the column names; an empty CSV field or a JSON null means "not available". \
            --json selects JSON lines unless --format says otherwise. The row count goes to stderr. Exit 4 \
            when the range holds no record.

            --vin VIN [--from T] [--to T] [--region CC]: everything this node stores of one vehicle (for \
            the vehicle's user: EU Data Act access, GDPR access requests), in every day file and table of \
            the regions that hold it: native telemetry and events, GB/T 32960 samples, motors, cell \
            voltages, probe temperatures, fault codes. JSON lines: a header with the data dictionary \
            (field names, units, scaling, source protocol), one line per row, a summary (the format is \
            Proto/EXPORT.md). Exit 4 for a VIN this node holds nothing of, or no rows in the range.

            Every export is recorded in the audit log (audit.path) with the invoking user; it does not \
            start when the audit log cannot be written.
            """)

    /// The output formats.
    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case csv, jsonl
    }

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The region to export (with --vin: only this region).", valueName: "CC"))
    var region: String?

    @Option(help: ArgumentHelp("One vehicle's history, with metadata (JSON lines, Proto/EXPORT.md).", valueName: "VIN"))
    var vin: String?

    @Option(
        help: ArgumentHelp("Start, inclusive (with --vin: default the first record). " + TimeArgument.accepted,
                           valueName: "time"),
        transform: TimeArgument.parse)
    var from: TimeArgument?

    @Option(help: ArgumentHelp("End, exclusive (with --vin: default now and later).", valueName: "time"),
            transform: TimeArgument.parse)
    var to: TimeArgument?

    @Option(help: "csv (default) or jsonl (default with --json); --vin always writes JSON lines.")
    var format: OutputFormat?

    static let columns = [
        "vin", "time", "timestamp_ms", "latitude", "longitude", "odometer_km", "speed_kmh", "heading_deg",
        "pack_voltage_v", "pack_current_a", "soc_percent", "max_cell_temp_c", "min_cell_temp_c", "max_alarm_level",
        "status", "aux_battery_v", "alarm_flags", "remaining_range_km",
    ]

    func run() async throws {
        let context = try await global.context()
        let now = CtlClock.nowMs()
        let fromMs = from?.epochMs(nowMs: now)
        let toMs = to?.epochMs(nowMs: now)
        if let fromMs, let toMs, fromMs >= toMs {
            throw CtlError(
                .badArguments, "--from \(Format.time(fromMs)) is not before --to \(Format.time(toMs))",
                remedy: "give a range whose start is before its end")
        }
        if let vinText = vin {
            let vin = try CtlContext.vin(vinText)
            if format == .csv {
                throw CtlError(
                    .badArguments, "export --vin writes JSON lines (Proto/EXPORT.md), not CSV",
                    remedy: "leave out --format")
            }
            let regions = try context.regions(region)
            try context.requireStateDirectory()
            try await VehicleExport(
                context: context, vin: vin, regions: regions, fromMs: fromMs, toMs: toMs, explicitRegion: region != nil
            ).run()
            return
        }
        guard let regionCode = region, let fromMs, let toMs else {
            throw CtlError(
                .badArguments, "export needs --region, --from and --to (or --vin for one vehicle)",
                remedy: "for example horgosctl export --region AE --from 2026-11-29 --to 2026-11-30")
        }
        let region = try context.region(regionCode)
        try context.requireStateDirectory()
        let format = self.format ?? (context.json ? .jsonl : .csv)
        let trail = try AuditTrail(
            context, action: "export",
            arguments: [
                "region": region.code, "from": Format.time(fromMs), "to": Format.time(toMs), "format": format.rawValue,
            ])
        let rows = try await trail.run { () throws -> (Int, String) in
            let rows = try export(context, region: region, fromMs: fromMs, toMs: toMs, format: format)
            return (rows, "\(rows) records")
        }
        if !context.json { Console.error("exported \(rows) record(s) of \(region.code)") }
    }

    private func export(
        _ context: CtlContext, region: HorgosWire.Region, fromMs: Int64, toMs: Int64, format: OutputFormat
    ) throws(CtlError) -> Int {
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
        } catch {
            output.flush()
            throw CtlError(.failure, "export failed: \(error)", remedy: "check the shards (horgosctl shards --check)")
        }
        output.flush()
        guard rows > 0 else {
            throw CtlError(
                .notFound,
                "no records of region \(region.code) between \(Format.time(fromMs)) and \(Format.time(toMs))",
                remedy: "widen the range; horgosctl shards --region \(region.code) shows the time range of each day")
        }
        return rows
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
