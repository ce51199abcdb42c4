import Foundation
import HorgosConfig
import HorgosStore
import HorgosWire

/// `horgosctl export --vin`: one vehicle's history in the format of Proto/EXPORT.md (JSON lines: a
/// header with the data dictionary, one line per stored row, a summary), recorded in the audit log.
struct VehicleExport {
    let context: CtlContext
    let vin: VIN
    /// The regions to look in (`--region`, else every configured region).
    let regions: [HorgosWire.Region]
    let fromMs: Int64?
    let toMs: Int64?
    /// `--region` was given: the region must hold the vehicle.
    let explicitRegion: Bool

    /// The header line (`record: header`).
    struct Header: Encodable {
        var record = "header"
        var format = VehicleExportDictionary.format
        var version = VehicleExportDictionary.version
        var vin: String
        var regions: [String]
        var from: String?
        var to: String?
        var generatedAt: String
        var generatedBy: String
        var node: String
        var dictionaryDocument = "Proto/EXPORT.md"
        var notes: String
        var tables: [VehicleExportTable]

        enum CodingKeys: String, CodingKey {
            case record, format, version, vin, regions, from, to, node, notes, tables
            case generatedAt = "generated_at"
            case generatedBy = "generated_by"
            case dictionaryDocument = "dictionary_document"
        }
    }

    func run() async throws {
        var arguments = ["vin": vin.description]
        if let fromMs { arguments["from"] = Format.time(fromMs) }
        if let toMs { arguments["to"] = Format.time(toMs) }
        if explicitRegion { arguments["region"] = regions.first?.code }
        let trail = try AuditTrail(context, action: "export", arguments: arguments)
        try await trail.run { () throws -> (Void, String) in
            let holders = try holdingRegions()
            let summary = try write(holders)
            guard summary.total > 0 else {
                throw CtlError(
                    .notFound,
                    "\(vin) has no stored rows" + (fromMs == nil && toMs == nil ? "" : " between "
                        + "\(fromMs.map(Format.time) ?? "the first record") and \(toMs.map(Format.time) ?? "now")")
                        + " (regions \(holders.map(\.code).joined(separator: " ")) know it)",
                    remedy: "widen --from/--to, or check horgosctl vehicle \(vin)")
            }
            let counts = summary.rows.keys.sorted().map { "\($0) \(summary.rows[$0]!)" }.joined(separator: ", ")
            if !context.json { Console.error("exported \(summary.total) row(s) of \(vin): \(counts)") }
            return ((), "\(summary.total) rows of regions \(holders.map(\.code).joined(separator: ",")): \(counts)")
        }
    }

    /// The regions whose shards hold the vehicle; exit 4 when none does.
    private func holdingRegions() throws -> [HorgosWire.Region] {
        var holders: [HorgosWire.Region] = []
        for region in regions {
            do throws(StoreError) {
                if try context.reader(region).holds(vin) { holders.append(region) }
            } catch {
                throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
            }
        }
        guard !holders.isEmpty else {
            throw CtlError(
                .notFound,
                "unknown VIN \(vin): " + (explicitRegion ? "region \(regions[0].code)" : "no region of this node")
                    + " holds a registry entry or a row of it",
                remedy: "check the VIN; with several nodes, run the export on the node serving the vehicle's market")
        }
        return holders
    }

    /// Writes the header, every row of every holding region, and the summary; returns the counts.
    private func write(_ holders: [HorgosWire.Region]) throws -> VehicleExportSummary {
        let header = Header(
            vin: vin.description, regions: holders.map(\.code), from: fromMs.map(Format.time), to: toMs.map(Format.time),
            generatedAt: Format.time(CtlClock.nowMs()), generatedBy: "horgosctl \(HorgosServerInfo.version)",
            node: ProcessInfo.processInfo.hostName,
            notes: "one JSON object per line; times are UTC; null means not available; values are in the "
                + "units of the dictionary below (tables[].fields[].unit)",
            tables: VehicleExportDictionary.tables)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var output = RowWriter()
        output.append(String(decoding: try encoder.encode(header), as: UTF8.self) + "\n")
        var total = VehicleExportSummary()
        for region in holders {
            do {
                let summary = try context.reader(region).exportVehicle(
                    vin, fromMs: fromMs ?? .min, toMs: toMs ?? .max
                ) { row in output.append(Self.line(row, region: region.code)) }
                total.rows.merge(summary.rows, uniquingKeysWith: +)
            } catch let error as StoreError {
                output.flush()
                throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
            }
        }
        let counts = total.rows.keys.sorted().map { "\"\($0)\":\(total.rows[$0]!)" }.joined(separator: ",")
        output.append("{\"record\":\"summary\",\"rows\":{\(counts)},\"total\":\(total.total)}\n")
        output.flush()
        return total
    }

    /// One row as a JSON line: `record`, `region`, `time`, `timestamp_ms`, then its fields in order.
    static func line(_ row: VehicleExportRow, region: String) -> String {
        var line =
            "{\"record\":\"\(row.table)\",\"region\":\"\(region)\",\"time\":\"\(Format.time(row.timestampMs))\","
            + "\"timestamp_ms\":\(row.timestampMs)"
        for (name, value) in row.fields { line += ",\"\(name)\":" + json(value) }
        return line + "}\n"
    }

    static func json(_ value: VehicleExportValue) -> String {
        switch value {
        case .null: "null"
        case .integer(let number): String(number)
        case .decimal(let number, let scale): Format.fixed(number, scale)
        case .text(let text): "\"\(text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
        case .integers(let list): "[" + list.map { $0.map(String.init) ?? "null" }.joined(separator: ",") + "]"
        case .objects(let list):
            "[" + list.map { object in
                "{" + object.keys.sorted().map { "\"\($0)\":\(object[$0]!)" }.joined(separator: ",") + "}"
            }.joined(separator: ",") + "]"
        }
    }
}
