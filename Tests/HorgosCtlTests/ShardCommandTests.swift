import Foundation
import HorgosStore
import HorgosWire
import Testing

/// A small fleet written once through the real store writer, read by the tests below (read-only).
///
/// AE: vehicle 1 (10 records from 11:40, SOC 50), vehicle 2 (5 records from 11:51, SOC 5, cells 60 °C,
/// alarm level 2 with battery_high_temperature + soc_low), vehicle 3 (4 records two days earlier).
/// BR: vehicles 11 and 12 (6 records each from 11:30). MX: opened by the writer, no vehicle. TH: configured,
/// never opened (no directory).
final class SampleFleet: Sendable {
    let fixture: CtlFixture
    static let alarmFlags = AlarmBit.batteryHighTemperature.mask | AlarmBit.socLow.mask

    init() async throws {
        fixture = try CtlFixture(regions: ["AE", "BR", "MX", "TH"], name: "SampleFleet")
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE", "BR", "MX"], nowMs: noon)
        try await writer.store("AE", testVIN(1), baseTimeMs: noon - 20 * 60_000, minuteRecords(10))
        try await writer.store(
            "AE", testVIN(2), baseTimeMs: noon - 9 * 60_000,
            minuteRecords(5, soc: 5, maxCellTemp: 60, alarmLevel: 2, alarmFlags: Self.alarmFlags))
        try await writer.store("AE", testVIN(3), baseTimeMs: noon - 2 * 86_400_000, minuteRecords(4))
        try await writer.store("BR", testVIN(11), baseTimeMs: noon - 30 * 60_000, minuteRecords(6))
        try await writer.store("BR", testVIN(12), baseTimeMs: noon - 30 * 60_000, minuteRecords(6))
        writer.stop()
    }

    /// Written once, by the first test that asks.
    private static let written = Task { try await SampleFleet() }

    static func fixture() async throws -> CtlFixture { try await written.value.fixture }
}

@Suite("horgosctl against shards written by the store writer")
struct ShardCommandTests {
    let fleet: CtlFixture

    init() async throws { fleet = try await SampleFleet.fixture() }

    @Test("fleet --json counts vehicles, reporting, silent, alarms, low SOC and hot cells per region")
    func fleetCountsPerRegion() async throws {
        let run = try await fleet.run(["fleet", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try run.json()
        let regions = try #require(report["regions"] as? [[String: Any]])
        #expect(regions.map { $0["region"] as? String } == ["AE", "BR", "MX"], "TH has no files")
        let ae = regions[0]
        #expect(ae["vehiclesTotal"] as? Int == 3)
        #expect(ae["reportingLastHour"] as? Int == 2)
        #expect(ae["silentOver24h"] as? Int == 1)
        #expect(ae["withActiveAlarms"] as? Int == 1)
        #expect(ae["lowSOC"] as? Int == 1)
        #expect(ae["overTemperature"] as? Int == 1)
        #expect(ae["averageSOC"] as? Double == 35)
        #expect(regions[1]["vehiclesTotal"] as? Int == 2)
        #expect(regions[1]["withActiveAlarms"] as? Int == 0)
        #expect(regions[2]["vehiclesTotal"] as? Int == 0)
        #expect(regions[2]["averageSOC"] == nil, "no SOC to average")
        #expect((report["totals"] as? [String: Any])?["vehiclesTotal"] as? Int == 5)
        #expect(report["asOfMs"] as? Int64 == noon)
    }

    @Test("fleet --region prints an aligned table of that region only")
    func fleetTableForOneRegion() async throws {
        let run = try await fleet.run(["fleet", "--region", "br"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("REGION") == true)
        #expect(lines.count >= 2 && lines[1].hasPrefix("BR "))
        #expect(!run.stdout.contains("AE"))
        #expect(!run.stdout.contains("\u{1B}["), "no colour when stdout is not a terminal")
    }

    @Test("vehicle --json returns the latest state, alarm names and only the track points in range")
    func vehicleTrackInRange() async throws {
        let run = try await fleet.run(
            [
                "vehicle", testVIN(1).description, "--from", "2026-11-29T11:45:00Z", "--to", "2026-11-29T11:48:00Z",
                "--json",
            ])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try run.json()
        #expect(report["region"] as? String == "AE")
        let track = try #require(report["track"] as? [[String: Any]])
        let times = track.compactMap { $0["timestampMs"] as? Int64 }
        #expect(times == [noon - 15 * 60_000, noon - 14 * 60_000, noon - 13 * 60_000])
        let state = try #require(report["state"] as? [String: Any])
        #expect(state["records"] as? Int == 10)
        #expect(state["lastSeenMs"] as? Int64 == noon - 11 * 60_000)

        // The same range in relative form, resolved against HORGOSCTL_NOW.
        let relative = try await fleet.run(
            ["vehicle", testVIN(1).description, "--from", "15m", "--to", "12m", "--json"])
        let relativeTrack = try #require(try relative.json()["track"] as? [[String: Any]])
        #expect(relativeTrack.compactMap { $0["timestampMs"] as? Int64 } == times)

        let alarmed = try await fleet.run(["vehicle", testVIN(2).description, "--json"]).json()
        #expect(alarmed["alarmNames"] as? [String] == ["battery_high_temperature", "soc_low"])
        #expect((alarmed["track"] as? [Any])?.count == 5)
    }

    @Test("alarms --json lists the alarmed vehicle with decoded names; --since filters by report time")
    func alarmsDecoded() async throws {
        let run = try await fleet.run(["alarms", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let alarms = try #require(try run.json()["alarms"] as? [[String: Any]])
        #expect(alarms.count == 1)
        #expect(alarms.first?["vin"] as? String == testVIN(2).description)
        #expect(alarms.first?["region"] as? String == "AE")
        #expect(alarms.first?["alarmNames"] as? [String] == ["battery_high_temperature", "soc_low"])
        #expect(alarms.first?["maxAlarmLevel"] as? Int == 2)

        let recent = try await fleet.run(["alarms", "--since", "2m", "--json"]).json()
        #expect((recent["alarms"] as? [Any])?.count == 0, "the alarm's last record is 5 minutes old")
        let table = try await fleet.run(["alarms", "--region", "AE"])
        #expect(table.stdout.contains("battery_high_temperature, soc_low"))
    }

    @Test("shards --json lists registry and day partitions with their row counts and time ranges")
    func shardsInventory() async throws {
        let run = try await fleet.run(["shards", "--json", "--check"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try run.json()
        #expect(report["ok"] as? Bool == true)
        let regions = try #require(report["regions"] as? [[String: Any]])
        let ae = try #require(regions.first { $0["region"] as? String == "AE" })
        let files = try #require(ae["files"] as? [[String: Any]])
        let rows = Dictionary(uniqueKeysWithValues: files.map { ($0["name"] as! String, $0["rows"] as! Int) })
        #expect(rows == ["registry.sqlite": 3, "telemetry-2026-11-27.sqlite": 4, "telemetry-2026-11-29.sqlite": 15])
        let today = try #require(files.first { $0["name"] as? String == "telemetry-2026-11-29.sqlite" })
        #expect(today["firstRecordMs"] as? Int64 == noon - 20 * 60_000)
        #expect(today["lastRecordMs"] as? Int64 == noon - 5 * 60_000)
        let checks = try #require(ae["integrity"] as? [[String: Any]])
        #expect(checks.count == 3 && checks.allSatisfy { $0["ok"] as? Bool == true })
        #expect(regions.map { $0["region"] as? String } == ["AE", "BR", "MX"], "TH has no directory")
    }

    @Test("export streams every record of the range as CSV or JSON lines")
    func exportRowCounts() async throws {
        let csv = try await fleet.run(["export", "--region", "AE", "--from", "2026-11-29", "--to", "2026-11-30"])
        #expect(csv.status == 0, "\(csv.stderr)")
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("vin,time,timestamp_ms,latitude") == true)
        #expect(lines.count == 1 + 15)
        let fieldCounts = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).count }
        #expect(fieldCounts.allSatisfy { $0 == 18 })
        #expect(csv.stderr.contains("exported 15 record(s)"))

        let jsonl = try await fleet.run(
            ["export", "--region", "AE", "--from", "3d", "--to", "now", "--format", "jsonl"])
        #expect(jsonl.status == 0, "\(jsonl.stderr)")
        let objects = try jsonl.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.count == 19)
        #expect(Set(objects.compactMap { $0["vin"] as? String }).count == 3)
        let first = try #require(objects.first { $0["timestamp_ms"] as? Int64 == noon - 20 * 60_000 })
        #expect(first["latitude"] as? Double == 25.1)
        #expect(first["soc_percent"] as? Int == 50)
        #expect(first["remaining_range_km"] is NSNull)

        let window = try await fleet.run(
            ["export", "--region", "BR", "--from", "2026-11-29T11:31:00Z", "--to", "2026-11-29T11:33:00Z", "--json"])
        #expect(window.stdout.split(separator: "\n").count == 4, "2 minutes x 2 vehicles")
    }

    @Test("exit 4: an unknown VIN, a range without records, a region without data")
    func notFound() async throws {
        let vin = try await fleet.run(["vehicle", "WVWZZZ1JZXW000001"])
        #expect(vin.status == 4)
        #expect(vin.stderr.contains("WVWZZZ1JZXW000001") && vin.stderr.contains("->"))
        let empty = try await fleet.run(["export", "--region", "BR", "--from", "2026-11-01", "--to", "2026-11-02"])
        #expect(empty.status == 4, "\(empty.stderr)")
        let th = try await fleet.run(["fleet", "--region", "TH"])
        #expect(th.status == 4, "\(th.stderr)")
        #expect(try await fleet.run(["alarms", "--region", "TH"]).status == 4)
        #expect(try await fleet.run(["shards", "--region", "TH"]).status == 4)
        let noState = try await fleet.run(["fleet", "--state", fleet.root + "/nowhere"])
        #expect(noState.status == 4)
        #expect(noState.stderr.contains("--state"))
    }

    @Test("exit 2: bad VIN, unconfigured region, malformed time, usage errors; refused before opening shards")
    func badArguments() async throws {
        let missingState = fleet.root + "/does-not-exist"
        for arguments in [
            ["vehicle", "LSVCTL123"], ["vehicle", "LSVCTL0000000000I"], ["fleet", "--region", "DE"],
            ["fleet", "--region", "ZZZ"], ["alarms", "--region", "FR"], ["shards", "--region", "US"],
            ["export", "--region", "DE", "--from", "1d", "--to", "now"],
            ["export", "--region", "AE", "--from", "yesterday", "--to", "now"],
            ["export", "--region", "AE", "--from", "now", "--to", "1d"], ["fleet", "--bogus"], ["vehicle"],
            ["prune", "--older-than", "soon"], ["nonsense"],
        ] {
            let run = try await fleet.run(arguments + ["--state", missingState])
            #expect(run.status == 2, "\(arguments): \(run.status) \(run.stderr)")
            #expect(!run.stderr.isEmpty, "\(arguments) says what was wrong")
        }
        let vin = try await fleet.run(["vehicle", "LSVCTL123"])
        #expect(vin.stderr.contains("17 characters"))
        let time = try await fleet.run(["alarms", "--since", "yesterday"])
        #expect(time.stderr.contains("ISO 8601"), "a malformed time names the accepted forms")
        let region = try await fleet.run(["fleet", "--region", "DE"])
        #expect(region.stderr.contains("AE BR MX"), "names the configured regions")
    }

    @Test("--help documents the exit codes and exits 0")
    func helpDocumentsExitCodes() async throws {
        let run = try await runHorgosctl(["--help"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("EXIT CODES"))
        #expect(run.stdout.contains("3  daemon unreachable"))
    }
}

@Suite("horgosctl configuration and terminal output")
struct ConfigurationAndOutputTests {
    let fleet: CtlFixture

    init() async throws { fleet = try await SampleFleet.fixture() }

    @Test("without --config the state directory and regions come from HORGOS_* like the daemon's")
    func environmentConfiguration() async throws {
        let run = try await fleet.run(
            ["fleet", "--json"], withConfig: false,
            environment: ["HORGOS_STATE_DIRECTORY": fleet.state, "HORGOS_REGIONS": "BR,TH"])
        #expect(run.status == 0, "\(run.stderr)")
        let regions = try #require(try run.json()["regions"] as? [[String: Any]])
        #expect(regions.map { $0["region"] as? String } == ["BR"])
        let refused = try await fleet.run(
            ["fleet", "--region", "AE"], withConfig: false,
            environment: ["HORGOS_STATE_DIRECTORY": fleet.state, "HORGOS_REGIONS": "BR,TH"])
        #expect(refused.status == 2, "AE is not configured there")
        let badValue = try await fleet.run(["fleet"], withConfig: false, environment: ["HORGOS_REGIONS": "br"])
        #expect(badValue.status == 2)
        #expect(badValue.stderr.contains("regions"))
        let missingFile = try await fleet.run(["fleet", "--config", fleet.root + "/missing.yaml"], withConfig: false)
        #expect(missingFile.status == 2)
        #expect(missingFile.stderr.contains("missing.yaml"))
    }

    /// util-linux `script` (Debian bsdutils) runs a command on a pseudo-terminal. Without it the test is
    /// skipped locally and fails in CI (`CI=true`; `.ci/run` installs it).
    static let script = "/usr/bin/script"

    @Test(
        "colour only on a terminal, and never with NO_COLOR",
        .enabled(if: FileManager.default.isExecutableFile(atPath: script) || ciRequiresHostTools, "needs util-linux script"))
    func colourOnlyOnATerminal() async throws {
        let script = Self.script
        let binary = try #require(horgosctlPath())
        let command = "\(binary) fleet --region AE --config \(fleet.config)"
        let terminal = try await runProgram(script, ["-qec", command, "/dev/null"], environment: ["NO_COLOR": ""])
        #expect(terminal.status == 0, "\(terminal.stdout)")
        #expect(terminal.stdout.contains("\u{1B}[1m"), "bold header on a terminal")
        let noColour = try await runProgram(script, ["-qec", command, "/dev/null"], environment: ["NO_COLOR": "1"])
        #expect(noColour.status == 0)
        #expect(noColour.stdout.contains("REGION") && !noColour.stdout.contains("\u{1B}["))
    }
}
