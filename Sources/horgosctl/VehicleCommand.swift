import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl vehicle VIN`: one vehicle's latest state and its track over a time range.
struct VehicleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vehicle",
        abstract: "One vehicle's latest state and its track over a time range.",
        discussion: """
            The vehicle is looked up in the registry of every configured region (or only --region). A VIN \
            with data in several regions (a unit re-certified for another market, a gateway's vehicle) is \
            shown from the region that saw it last, and the others are listed with their last-seen time \
            (--region CC shows one of them). The track holds the stored records with --from <= time < --to, \
            oldest first. Exit 2 for a VIN that is not 17 valid characters, 4 when no region knows the VIN.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The vehicle's VIN (17 characters, no I, O or Q).")
    var vin: String

    @Option(
        help: ArgumentHelp("Start of the track (default 24h ago). " + TimeArgument.accepted, valueName: "time"),
        transform: TimeArgument.parse)
    var from: TimeArgument?

    @Option(
        help: ArgumentHelp("End of the track, exclusive (default now).", valueName: "time"),
        transform: TimeArgument.parse)
    var to: TimeArgument?

    @Option(help: ArgumentHelp("Only look in this region.", valueName: "CC"))
    var region: String?

    @Option(help: "Most track points returned (the oldest ones).")
    var limit = 100_000

    /// Another region whose registry knows the VIN.
    struct OtherRegion: Encodable {
        var region: String
        var lastSeenMs: Int64?
        var records: Int
    }

    /// The JSON document.
    struct Report: Encodable {
        var vin: String
        var region: String
        /// The other regions that hold data of this VIN, newest first (empty with --region).
        var otherRegions: [OtherRegion]
        var state: VehicleState
        var alarmNames: [String]
        var fromMs: Int64
        var toMs: Int64
        var trackPoints: Int
        var track: [TrackPoint]
        /// The newest GB/T 32960 sample's own fields (nil: the vehicle never sent GB/T 32960).
        var gbt32960: GBT32960Details?
    }

    func run() async throws {
        let vin = try CtlContext.vin(vin)
        let context = try await global.context()
        let regions = try context.regions(region)
        let now = CtlClock.nowMs()
        let fromMs = from?.epochMs(nowMs: now) ?? now - 86_400_000
        let toMs = to?.epochMs(nowMs: now) ?? now
        guard fromMs < toMs else {
            throw CtlError(
                .badArguments, "--from \(Format.time(fromMs)) is not before --to \(Format.time(toMs))",
                remedy: "give a range whose start is before its end")
        }
        guard limit > 0 else { throw CtlError(.badArguments, "--limit must be positive", remedy: "use --limit 1000") }
        try context.requireStateDirectory()
        var everywhere: [(region: HorgosWire.Region, state: VehicleState)] = []
        for region in regions {
            do throws(StoreError) {
                if let state = try context.reader(region).vehicle(vin) { everywhere.append((region, state)) }
            } catch {
                if error.kind == .notFound { continue }
                throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
            }
        }
        // The region that saw the VIN last; the others are named, never silently left out.
        everywhere.sort { a, b in
            (a.state.lastSeenMs ?? .min, b.region.code) > (b.state.lastSeenMs ?? .min, a.region.code)
        }
        let others = everywhere.dropFirst().map {
            OtherRegion(region: $0.region.code, lastSeenMs: $0.state.lastSeenMs, records: $0.state.records)
        }
        guard let found = everywhere.first else {
            let scope =
                self.region.map { "region \($0.uppercased())" } ?? "any of the \(regions.count) configured regions"
            throw CtlError(
                .notFound, "vehicle \(vin) is not in the registry of \(scope) under \(context.stateDirectory)",
                remedy: "check the VIN; a vehicle appears with its first stored record, in the region of its "
                    + "certificate's market")
        }
        let (region, state) = found
        let track: [TrackPoint]
        do throws(StoreError) {
            track = try context.reader(region).track(vin, fromMs: fromMs, toMs: toMs, limit: limit)
        } catch {
            throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
        }
        let names = AlarmBit.names(in: state.alarmFlags)
        let gbt32960: GBT32960Details?
        do throws(StoreError) {
            gbt32960 = try context.reader(region).gbt32960Details(vin)
        } catch {
            throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
        }
        if context.json {
            try Console.json(
                Report(
                    vin: vin.description, region: region.code, otherRegions: others, state: state,
                    alarmNames: names, fromMs: fromMs, toMs: toMs, trackPoints: track.count, track: track,
                    gbt32960: gbt32960))
            return
        }
        printState(state, region: region, alarmNames: names, now: now)
        for other in others {
            Console.line(
                "also in region \(other.region): \(other.records) records, last seen \(Format.time(other.lastSeenMs))"
                    + " (horgosctl vehicle \(vin) --region \(other.region))")
        }
        if let gbt32960 { GBT32960VehicleSection.print(gbt32960) }
        Console.line()
        Console.line(
            Console.bold("Track") + " \(Format.time(fromMs)) .. \(Format.time(toMs)): \(track.count) point(s)"
                + (track.count == limit ? " (--limit reached)" : ""))
        guard !track.isEmpty else { return }
        var table = TextTable([
            .init("TIME"), .init("LATITUDE", numeric: true), .init("LONGITUDE", numeric: true),
            .init("KM/H", numeric: true), .init("SOC %", numeric: true), .init("PACK V", numeric: true),
            .init("PACK A", numeric: true), .init("MAX °C", numeric: true), .init("ALARMS"),
        ])
        for point in track {
            table.append([
                Format.time(point.timestampMs), Format.optional(point.latitudeE7, scale: 7),
                Format.optional(point.longitudeE7, scale: 7), Format.optional(point.speedDkmh, scale: 1),
                Format.optional(point.soc), Format.optional(point.packVoltageDv, scale: 1),
                Format.optional(point.packCurrentDa, scale: 1), Format.optional(point.maxCellTemp),
                AlarmBit.names(in: point.alarmFlags).joined(separator: ","),
            ])
        }
        table.style = { _, column, text in column == 8 ? Console.red(text) : text }
        Console.out(table.render())
    }

    private func printState(_ s: VehicleState, region: Region, alarmNames: [String], now: Int64) {
        var alarm = "none"
        if (s.maxAlarmLevel ?? 0) > 0 || !alarmNames.isEmpty {
            alarm =
                "level \(s.maxAlarmLevel.map(String.init) ?? "-")"
                + (alarmNames.isEmpty ? "" : ": " + alarmNames.joined(separator: ", "))
                + " (reported \(Format.time(s.alarmTimeMs)))"
        }
        let position =
            s.latitudeE7 == nil
            ? "-"
            : "\(Format.optional(s.latitudeE7, scale: 7)), \(Format.optional(s.longitudeE7, scale: 7))"
        let rows: [(String, String)] = [
            ("VIN", s.vin), ("region", region.code),
            ("last seen", "\(Format.time(s.lastSeenMs)) (\(Format.age(s.lastSeenMs, nowMs: now)))"),
            ("first seen", Format.time(s.firstSeenMs)),
            ("position", position),
            ("speed", Format.optional(s.speedDkmh, scale: 1, suffix: " km/h")),
            ("SOC", Format.optional(s.soc, suffix: " %")),
            (
                "cell temperature",
                "max \(Format.optional(s.maxCellTemp, suffix: " °C")), "
                    + "min \(Format.optional(s.minCellTemp, suffix: " °C"))"
            ),
            ("alarm", alarmNames.isEmpty && alarm == "none" ? alarm : Console.red(alarm)),
            (
                "active DTCs",
                s.activeDTCs.isEmpty
                    ? "none"
                    : s.activeDTCs.map { "source \($0.source) code \($0.code)" }.joined(separator: "; ")
            ),
            ("stored", "\(s.records) records, \(s.duplicates) duplicates, \(s.rejected) rejected, \(s.events) events"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (key, value) in rows {
            Console.line(Console.bold(key.padding(toLength: width, withPad: " ", startingAt: 0)) + "  " + value)
        }
    }
}
