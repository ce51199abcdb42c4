import ArgumentParser
import Foundation
import HorgosStore
import HorgosWire

/// `horgosctl alarms`: vehicles with an active alarm, decoded into alarm names, most severe first.
struct AlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarms",
        abstract: "Vehicles with active alarms, with the alarm flags decoded into names.",
        discussion: """
            Active = the latest alarm level is 1 or more, an alarm flag is set, or a DTC is active. \
            --since keeps the vehicles whose latest alarm report (or newest active DTC) is at or after that \
            time. \
            Names are PROTOCOL.md's (GB/T 32960 general alarm flags). No alarms is a normal answer (exit 0).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this region.", valueName: "CC"))
    var region: String?

    @Option(
        help: ArgumentHelp(
            "Only alarms last reported at or after this time. " + TimeArgument.accepted, valueName: "time"),
        transform: TimeArgument.parse)
    var since: TimeArgument?

    @Option(help: "Most vehicles listed per region.")
    var limit = 1000

    /// One vehicle's alarm with its region.
    struct Entry: Encodable {
        var region: String
        var vin: String
        var maxAlarmLevel: UInt8?
        var alarmFlags: UInt32
        var alarmNames: [String]
        var alarmTimeMs: Int64?
        var lastSeenMs: Int64?
        var activeDTCs: [ActiveDTC]
    }

    /// The JSON document.
    struct Report: Encodable {
        var sinceMs: Int64?
        var regionsWithData: [String]
        var alarms: [Entry]
    }

    func run() async throws {
        let context = try await global.context()
        let regions = try context.regions(region)
        guard limit > 0 else { throw CtlError(.badArguments, "--limit must be positive", remedy: "use --limit 100") }
        try context.requireStateDirectory()
        let now = CtlClock.nowMs()
        let sinceMs = since?.epochMs(nowMs: now)
        var entries: [Entry] = []
        var withData: [String] = []
        for region in regions {
            let alarms: [VehicleAlarm]
            do throws(StoreError) {
                alarms = try context.reader(region).activeAlarms(limit: limit)
            } catch {
                if error.kind == .notFound { continue }
                throw CtlError(error, region: region, stateDirectory: context.stateDirectory)
            }
            withData.append(region.code)
            for alarm in alarms {
                let raised = alarm.alarmTimeMs ?? alarm.activeDTCs.map(\.sinceMs).max()
                if let sinceMs, (raised ?? Int64.min) < sinceMs { continue }
                entries.append(
                    Entry(
                        region: region.code, vin: alarm.vin, maxAlarmLevel: alarm.maxAlarmLevel,
                        alarmFlags: alarm.alarmFlags, alarmNames: alarm.alarmNames, alarmTimeMs: alarm.alarmTimeMs,
                        lastSeenMs: alarm.lastSeenMs, activeDTCs: alarm.activeDTCs))
            }
        }
        guard !withData.isEmpty else {
            throw CtlError(
                .notFound,
                "no shard data for \(region.map { "region \($0.uppercased())" } ?? "any configured region") in "
                    + context.stateDirectory,
                remedy: "check --state (or state_directory in the configuration)")
        }
        entries.sort { ($0.maxAlarmLevel ?? 0, $0.alarmTimeMs ?? 0) > ($1.maxAlarmLevel ?? 0, $1.alarmTimeMs ?? 0) }
        if context.json {
            try Console.json(Report(sinceMs: sinceMs, regionsWithData: withData, alarms: entries))
            return
        }
        if entries.isEmpty {
            Console.line(
                "no active alarms" + (sinceMs.map { " reported since \(Format.time($0))" } ?? "")
                    + " in \(withData.count) region(s)")
            return
        }
        var table = TextTable([
            .init("REGION"), .init("VIN"), .init("LEVEL", numeric: true), .init("REPORTED"), .init("LAST SEEN"),
            .init("ALARMS"),
        ])
        for entry in entries {
            var names = entry.alarmNames
            names += entry.activeDTCs.map { "dtc:\($0.source)/\(String($0.code, radix: 16, uppercase: true))" }
            table.append([
                entry.region, entry.vin, entry.maxAlarmLevel.map(String.init) ?? "-", Format.time(entry.alarmTimeMs),
                Format.age(entry.lastSeenMs, nowMs: now), names.joined(separator: ", "),
            ])
        }
        table.style = { _, column, text in column == 5 ? Console.red(text) : text }
        Console.out(table.render())
        Console.line("\(entries.count) vehicle(s) with active alarms")
    }
}
