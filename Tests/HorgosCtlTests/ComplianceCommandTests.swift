import Foundation
import HorgosAudit
import HorgosGBT32960
import HorgosStore
import HorgosTestSupport
import HorgosWire
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension FleetWriter {
    /// Stores one journal entry of `kind` (an EVENT payload, a GB/T 32960 entry) and waits for its commit.
    func storeEntry(_ region: String, _ kind: JournalEntryKind, _ payload: [UInt8]) async throws {
        let done = SharedCounter()
        try store.writer(for: Region(region)!).submit(kind, payload) { _ in done.increment() }
        #expect(await eventually(seconds: 30) { done.value >= 1 }, "commit of a \(kind) entry timed out")
    }

    /// Waits until the appliers wrote everything acknowledged.
    func applied() async { #expect(await store.waitUntilApplied()) }
}

/// One GB/T 32960 realtime frame of `vin` collected at `timeMs`, as the store keeps it.
func gbt32960Entry(_ vin: VIN, timeMs: Int64, seed: Int) -> (GBT32960RealtimeValues, [UInt8]) {
    let beijing = GBT32960Format.beijingUTCOffsetSeconds
    let values = GBT32960RealtimeValues.typical(
        seed: seed, time: GBT32960Time(epochSeconds: timeMs / 1000, utcOffsetSeconds: beijing))
    var frame: [UInt8] = []
    GBT32960Encoder.appendFrame(edition: values.edition, command: .realtime, vin: GBT32960VINField(vin), to: &frame) {
        values.appendDataUnit(to: &$0)
    }
    return (values, frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: beijing) })
}

/// The EVENT payload of `vin` at `timeMs`.
func eventPayload(_ vin: VIN, timeMs: Int64, dtcs: [DiagnosticTroubleCode]) -> [UInt8] {
    var frame: [UInt8] = []
    FrameEncoder.appendEvent(
        vin: vin, timeMs: timeMs, maxAlarmLevel: 2, alarmFlags: 1 << 4, dtcs: dtcs, sequence: 1, to: &frame)
    return Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
}

@Suite("compliance: export by VIN, the audit log, residency, per-region policy")
struct ComplianceCommandTests {
    static let day = UTCDay.millisecondsPerDay

    /// The lines of an `export --vin` run parsed as JSON objects.
    static func lines(_ run: CtlRun) throws -> [[String: Any]] {
        try run.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// A JSON number as a Double (export values are exact decimals; Double holds these exactly enough).
    static func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
    static func int64(_ value: Any?) -> Int64? { (value as? NSNumber)?.int64Value }

    @Test("export --vin of native and GB/T 32960 data over two days matches what was sent, field by field")
    func exportByVINMatchesWhatWasSentFieldByField() async throws {
        let fixture = try CtlFixture(regions: ["AE", "BR"])
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE", "BR"], nowMs: noon)
        let vin = testVIN(42)
        let yesterday = noon - Self.day
        // Day 1: native records and an event. Day 2: native records and two GB/T 32960 frames.
        let day1 = minuteRecords(4, soc: 61, maxCellTemp: 33, alarmLevel: 1, alarmFlags: 1 << 2)
        try await writer.store("AE", vin, baseTimeMs: yesterday, day1)
        let dtcs = [
            DiagnosticTroubleCode(code: 0xC0_1234, source: .battery, state: 1),
            DiagnosticTroubleCode(code: 0x42, source: .driveMotor, state: 0),
        ]
        try await writer.storeEntry("AE", .event, eventPayload(vin, timeMs: yesterday + 90_000, dtcs: dtcs))
        let day2 = minuteRecords(2, soc: 57)
        try await writer.store("AE", vin, baseTimeMs: noon - 3_600_000, day2)
        var sentGBT: [(Int64, GBT32960RealtimeValues)] = []
        for (index, time) in [noon - 1_800_000, noon - 900_000].enumerated() {
            let (values, entry) = gbt32960Entry(vin, timeMs: time, seed: 3 + index)
            try await writer.storeEntry("AE", .gbt32960, entry)
            sentGBT.append((time, values))
        }
        // Another vehicle beside it (must not appear), and the same VIN nowhere else.
        try await writer.store("AE", testVIN(43), baseTimeMs: noon - 3_600_000, minuteRecords(5))
        try await writer.store("BR", testVIN(44), baseTimeMs: noon - 3_600_000, minuteRecords(5))
        await writer.applied()
        writer.stop()

        let run = try await fixture.run(["export", "--vin", vin.description])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = try Self.lines(run)
        let header = try #require(lines.first)
        #expect(header["record"] as? String == "header" && header["format"] as? String == "horgos-vehicle-export")
        #expect(header["version"] as? Int == 1 && header["vin"] as? String == vin.description)
        #expect(header["regions"] as? [String] == ["AE"] && header["dictionary_document"] as? String == "Proto/EXPORT.md")
        let tables = try #require(header["tables"] as? [[String: Any]])
        #expect(tables.map { $0["name"] as? String } == VehicleExportDictionary.tables.map(\.name))
        let telemetryFields = try #require(tables.first?["fields"] as? [[String: Any]])
        let latitude = try #require(telemetryFields.first { $0["name"] as? String == "latitude" })
        #expect(latitude["unit"] as? String == "degree" && (latitude["description"] as? String)?.contains("1e-7") == true)
        #expect(tables.first?["sourceProtocols"] as? [String] == ["horgos", "gbt32960"])

        let rows = lines.dropFirst().dropLast()
        let summary = try #require(lines.last)
        #expect(summary["record"] as? String == "summary" && summary["total"] as? Int == rows.count)
        #expect(rows.allSatisfy { $0["region"] as? String == "AE" })
        // Every row's fields are the dictionary's, in its order.
        for row in rows {
            let table = try #require(VehicleExportDictionary.tables.first { $0.name == row["record"] as? String })
            #expect(Set(row.keys) == Set(["record", "region", "time", "timestamp_ms"] + table.fields.map(\.name)))
        }

        // Native telemetry: every record of both days, every field scaled as the dictionary says.
        let native = rows.filter { $0["record"] as? String == "telemetry" && $0["source_protocol"] as? String == "horgos" }
        let sent = day1.map { (yesterday + Int64($0.timeOffsetMs), $0) } + day2.map { (noon - 3_600_000 + Int64($0.timeOffsetMs), $0) }
        #expect(native.count == sent.count)
        for ((time, record), row) in zip(sent, native) {
            #expect(Self.int64(row["timestamp_ms"]) == time)
            #expect(row["time"] as? String == ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(time) / 1000)))
            #expect(Self.number(row["latitude"]) == Double(record.latitudeE7) / 1e7)
            #expect(Self.number(row["longitude"]) == Double(record.longitudeE7) / 1e7)
            #expect(Self.number(row["odometer_km"]) == Double(record.odometerHm) / 10)
            #expect(Self.number(row["speed_kmh"]) == Double(record.speedDkmh) / 10)
            #expect(Self.number(row["heading_deg"]) == Double(record.headingCdeg) / 100)
            #expect(Self.number(row["pack_voltage_v"]) == Double(record.packVoltageDv) / 10)
            #expect(Self.number(row["pack_current_a"]) == Double(record.packCurrentDa) / 10)
            #expect(row["soc_percent"] as? Int == Int(record.soc))
            #expect(row["max_cell_temp_c"] as? Int == Int(record.maxCellTemp))
            #expect(row["min_cell_temp_c"] as? Int == Int(record.minCellTemp))
            #expect(row["max_alarm_level"] as? Int == Int(record.maxAlarmLevel))
            #expect(row["status"] as? Int == Int(record.status))
            #expect(row["alarm_flags"] as? Int == Int(record.alarmFlags))
            #expect(row["aux_battery_v"] is NSNull && row["remaining_range_km"] is NSNull, "not available")
        }
        // The event with its DTCs, as sent.
        let events = rows.filter { $0["record"] as? String == "event" }
        #expect(events.count == 1)
        #expect(Self.int64(events.first?["timestamp_ms"]) == yesterday + 90_000)
        #expect(events.first?["max_alarm_level"] as? Int == 2 && events.first?["alarm_flags"] as? Int == 1 << 4)
        let exportedDTCs = try #require(events.first?["dtcs"] as? [[String: Int]])
        #expect(exportedDTCs == dtcs.map { ["code": Int($0.code), "source": Int($0.source.rawValue), "state": Int($0.state)] })

        // GB/T 32960: the mapped telemetry row, the sample, the motor, cells, probes and the fault code.
        for (time, values) in sentGBT {
            let at = rows.filter { Self.int64($0["timestamp_ms"]) == time }
            func one(_ table: String) throws -> [String: Any] {
                let matching = at.filter { $0["record"] as? String == table }
                #expect(matching.count == 1, "\(table) at \(time)")
                struct NoRow: Error { let table: String, time: Int64 }
                guard let first = matching.first else { throw NoRow(table: table, time: time) }
                return first
            }
            let vehicle = try #require(values.vehicle)
            let mapped = try one("telemetry")
            #expect(mapped["source_protocol"] as? String == "gbt32960")
            #expect(Self.number(mapped["speed_kmh"]) == Double(vehicle.speed) / 10)
            #expect(Self.number(mapped["odometer_km"]) == Double(vehicle.odometer) / 10)
            #expect(Self.number(mapped["pack_current_a"]) == Double(Int(vehicle.current) - 10_000) / 10)
            #expect(mapped["soc_percent"] as? Int == Int(vehicle.soc))
            #expect(Self.number(mapped["latitude"]) == Double(values.position!.latitude) / 1e6)
            let sample = try one("gbt_sample")
            #expect(sample["command"] as? Int == 2 && sample["vehicle_state"] as? Int == Int(vehicle.state))
            #expect(sample["charging_state"] as? Int == Int(vehicle.charging) && sample["gear"] as? Int == Int(vehicle.gear))
            #expect(sample["insulation_kohm"] as? Int == Int(vehicle.insulation))
            #expect(sample["max_cell_mv"] as? Int == Int(values.extremes!.maxVoltage))
            #expect(sample["max_temp_c"] as? Int == Int(values.extremes!.maxTemperature) - 40)
            #expect(sample["fuel_cell_probes"] as? [Int] == values.fuelCell!.probes.map { Int($0) - 40 })
            #expect(sample["fault_count"] as? Int == 1)
            let motor = try one("gbt_motor")
            #expect(motor["speed_rpm"] as? Int == Int(values.motors![0].speed) - 20_000)
            #expect(motor["voltage_dv"] as? Int == Int(values.motors![0].voltage))
            let cells = try one("gbt_cell_voltages")
            #expect(cells["cells_mv"] as? [Int] == values.cellSubsystems![0].cells.map(Int.init))
            #expect(cells["total_cells"] as? Int == 64 && cells["voltage_dv"] as? Int == 3_800)
            let probes = try one("gbt_probe_temperatures")
            #expect(probes["temperatures_c"] as? [Int] == values.probeSubsystems![0].temperatures.map { Int($0) - 40 })
            let fault = try one("gbt_fault")
            #expect(fault["source"] as? Int == 1 && fault["code"] as? Int == 0x1001)
        }
        let counts = try #require(summary["rows"] as? [String: Int])
        #expect(counts["telemetry"] == 8 && counts["event"] == 1 && counts["gbt_sample"] == 2 && counts["gbt_fault"] == 2)

        // The export is in the audit log, as the invoking user.
        let audit = AuditLog.records(path: fixture.state + "/audit.log")
        let record = try #require(audit.last)
        #expect(record.action == "export" && record.outcome == .ok && record.arguments["vin"] == vin.description)
        #expect(record.actor.uid == getuid() && record.actor.via == "cli")
    }

    @Test("Proto/EXPORT.md documents every table and field of the export's dictionary, with its unit")
    func exportDocumentListsEveryField() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Proto/EXPORT.md"), encoding: .utf8)
        for table in VehicleExportDictionary.tables {
            let heading = try #require(text.range(of: "### `\(table.name)`"), "no section for \(table.name)")
            let rest = text[heading.upperBound...]
            let section = rest[..<(rest.range(of: "\n### ")?.lowerBound ?? rest.endIndex)]
            for field in table.fields {
                let row = "| `\(field.name)` | \(field.unit.isEmpty ? "—" : field.unit) |"
                #expect(section.contains(row), "Proto/EXPORT.md, \(table.name): no row \(row)")
            }
        }
    }

    @Test("export --vin: an unknown VIN, a VIN without rows in the range and --format csv are clear errors")
    func exportByVINBadInput() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE"], nowMs: noon)
        try await writer.store("AE", testVIN(1), baseTimeMs: noon - 3_600_000, minuteRecords(3))
        writer.stop()
        let unknown = try await fixture.run(["export", "--vin", testVIN(2).description])
        #expect(unknown.status == 4 && unknown.stderr.contains("unknown VIN \(testVIN(2))"), "\(unknown.stderr)")
        let empty = try await fixture.run(["export", "--vin", testVIN(1).description, "--from", "2026-11-01", "--to", "2026-11-02"])
        #expect(empty.status == 4 && empty.stderr.contains("has no stored rows between"), "\(empty.stderr)")
        let malformed = try await fixture.run(["export", "--vin", "LSVCTL0000000000I"])
        #expect(malformed.status == 2)
        let csv = try await fixture.run(["export", "--vin", testVIN(1).description, "--format", "csv"])
        #expect(csv.status == 2 && csv.stderr.contains("JSON lines"))
        let outcomes = AuditLog.records(path: fixture.state + "/audit.log").map(\.outcome)
        #expect(outcomes == [.refused, .refused], "refused reads are recorded; bad arguments never start")
    }

    /// A log of `count` records made through the API, returned with its path.
    static func auditLog(_ fixture: CtlFixture, count: Int) async throws -> String {
        let path = fixture.state + "/audit.log"
        let log = AuditLog(path: path)
        for index in 1...count {
            try log.append(
                "erase", by: AuditOperator(uid: 0, user: "root", pid: 1, via: "unix-socket"),
                arguments: ["vin": testVIN(index).description, "reason": "request \(index)"], outcome: .ok,
                detail: "\(index) rows")
        }
        return path
    }

    static func lines(of path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .map(String.init)
    }

    static func write(_ lines: [String], to path: String) throws {
        try lines.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test("audit --verify passes an untouched log and names the record for a changed byte, a deleted record, a swap and a cut tail")
    func auditVerifyNamesTheBrokenRecord() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let path = try await Self.auditLog(fixture, count: 6)
        let intact = try await fixture.run(["audit", "--verify"])
        #expect(intact.status == 0 && intact.stdout.contains("6 record(s), intact"), "\(intact.stdout)\(intact.stderr)")
        let listed = try await fixture.run(["audit", "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.count == 6)
        let original = try Self.lines(of: path)

        func verify(_ lines: [String]) async throws -> CtlRun {
            try Self.write(lines, to: path)
            defer { try? Self.write(original, to: path) }
            return try await fixture.run(["audit", "--verify"])
        }
        // One byte changed inside record 3 (a digit of its detail).
        var changed = original
        changed[2] = changed[2].replacingOccurrences(of: "\"3 rows\"", with: "\"8 rows\"")
        #expect(changed != original)
        let byte = try await verify(changed)
        #expect(byte.status == 5 && byte.stderr.contains("record 3 (line 3) does not match its hash"), "\(byte.stderr)")
        // Record 4 removed.
        var removed = original
        removed.remove(at: 3)
        let deletion = try await verify(removed)
        #expect(deletion.status == 5 && deletion.stderr.contains("record 4 is missing"), "\(deletion.stderr)")
        // Records 2 and 3 swapped.
        var swapped = original
        swapped.swapAt(1, 2)
        let swap = try await verify(swapped)
        #expect(swap.status == 5 && swap.stderr.contains("line 2 holds record 3 where record 2 belongs"), "\(swap.stderr)")
        // The tail cut in the middle of record 6.
        var cut = original
        cut[5] = String(cut[5].prefix(40))
        cut.removeLast()  // no final newline: the file ends inside record 6
        let partial = try await verify(cut)
        #expect(partial.status == 5 && partial.stderr.contains("record 6 (line 6, the last) is incomplete"), "\(partial.stderr)")
        // The last two records removed whole: the anchor names record 6.
        let shortened = try await verify(Array(original.prefix(4)) + [""])
        #expect(
            shortened.status == 5 && shortened.stderr.contains("ends at record 4 but its anchor"), "\(shortened.stderr)")
        // A damaged log takes no more records (appending would hide the damage).
        try Self.write(Array(original.prefix(4)) + [""], to: path)
        #expect(throws: AuditError.self) {
            try AuditLog(path: path).append("export", by: .invokingUser(), outcome: .ok)
        }
        try Self.write(original, to: path)
        #expect(try await fixture.run(["audit", "--verify"]).status == 0)
        #expect(try AuditLog(path: path).append("export", by: .invokingUser(), outcome: .ok).seq == 7)
    }

    @Test("restore of a region the node does not serve is refused naming the region and the node's regions")
    func restoreResidencyGuard() async throws {
        // Node A serves DE and AE and backs both up.
        let nodeA = try CtlFixture(regions: ["DE", "AE"])
        let writer = try FleetWriter(stateDirectory: nodeA.state, regions: ["DE", "AE"], nowMs: noon)
        try await writer.store("DE", testVIN(1), baseTimeMs: noon - 3_600_000, minuteRecords(4))
        try await writer.store("AE", testVIN(2), baseTimeMs: noon - 3_600_000, minuteRecords(4))
        writer.stop()
        let backupDirectory = nodeA.root + "/backup"
        let backup = try await nodeA.run(["backup", "--to", backupDirectory, "--json"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let manifest = try backup.json()
        #expect(manifest["nodeRegions"] as? [String] == ["DE", "AE"] && manifest["node"] as? String != nil)
        #expect((manifest["regions"] as? [[String: Any]])?.compactMap { $0["region"] as? String }.sorted() == ["AE", "DE"])
        #expect(manifest["startedAt"] as? String == noonText)

        // Node B serves AE and SA only: DE is refused before anything is copied.
        let nodeB = try CtlFixture(regions: ["AE", "SA"])
        let refused = try await nodeB.run(["restore", "--from", backupDirectory])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("holds region DE, which this node does not serve; this node serves AE SA"))
        #expect(!FileManager.default.fileExists(atPath: nodeB.state + "/DE") && !FileManager.default.fileExists(atPath: nodeB.state + "/AE"))
        let explicit = try await nodeB.run(["restore", "--from", backupDirectory, "--region", "DE"])
        #expect(explicit.status == 2 && explicit.stderr.contains("region DE"))
        // A region it serves restores; a vehicle its audit log says was erased after the backup is named.
        try AuditLog(path: nodeB.state + "/audit.log").append(
            "erase", by: AuditOperator(uid: 0, user: "root", via: "unix-socket"),
            arguments: ["vin": testVIN(2).description, "regions": "AE", "reason": "resale"], outcome: .ok)
        let served = try await nodeB.run(["restore", "--from", backupDirectory, "--region", "AE"])
        #expect(served.status == 0, "\(served.stderr)")
        #expect(served.stderr.contains("note: \(testVIN(2)) was erased after this backup was taken"), "\(served.stderr)")
        #expect(try ShardReader(stateDirectory: nodeB.state, region: Region("AE")!).track(testVIN(2), fromMs: 0, toMs: .max).count == 4)
        let records = AuditLog.records(path: nodeB.state + "/audit.log")
        #expect(records.map(\.action) == ["restore", "restore", "erase", "restore"])
        #expect(records.map(\.outcome) == [.refused, .refused, .ok, .ok])
        #expect(records.filter { $0.action == "restore" }.allSatisfy { $0.actor.uid == getuid() })
    }

    @Test("a region whose policy forbids backups is left out and named; --region naming it is refused")
    func backupPolicy() async throws {
        let fixture = try CtlFixture(regions: ["AE", "RU"], extraConfig: "policy:\n  RU:\n    backup: false")
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE", "RU"], nowMs: noon)
        try await writer.store("AE", testVIN(1), baseTimeMs: noon - 3_600_000, minuteRecords(2))
        try await writer.store("RU", testVIN(2), baseTimeMs: noon - 3_600_000, minuteRecords(2))
        writer.stop()
        let run = try await fixture.run(["backup", "--to", fixture.root + "/b", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let manifest = try run.json()
        #expect((manifest["regions"] as? [[String: Any]])?.compactMap { $0["region"] as? String } == ["AE"])
        let excluded = try #require(manifest["excludedRegions"] as? [[String: String]])
        #expect(excluded == [["region": "RU", "reason": "policy.RU.backup: false"]])
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/b/RU"))
        let refused = try await fixture.run(["backup", "--to", fixture.root + "/c", "--region", "RU"])
        #expect(refused.status == 2 && refused.stderr.contains("policy.RU.backup: false"), "\(refused.stderr)")
    }

    @Test("prune applies each region's retention and records the invoking user; a bad policy value is exit 2 naming the key")
    func prunePerRegionRetentionAndBadPolicy() async throws {
        let fixture = try CtlFixture(
            regions: ["AE", "BR"], extraConfig: "policy:\n  AE:\n    retention_days: 20\n  BR:\n    retention_days: 60")
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE", "BR"], nowMs: noon)
        for region in ["AE", "BR"] {
            writer.setNow(noon - 40 * Self.day)
            try await writer.store(region, testVIN(1), baseTimeMs: noon - 40 * Self.day, minuteRecords(2))
            writer.setNow(noon)
            try await writer.store(region, testVIN(1), baseTimeMs: noon, minuteRecords(2))
        }
        writer.stop()
        let run = try await fixture.run(["prune", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try run.json()
        #expect(report["retentionDaysByRegion"] as? [String: Int] == ["AE": 20, "BR": 60])
        #expect((report["pruned"] as? [[String: Any]])?.compactMap { $0["region"] as? String } == ["AE"])
        let record = try #require(AuditLog.records(path: fixture.state + "/audit.log").last)
        #expect(record.action == "prune" && record.outcome == .ok && record.actor.uid == getuid())
        #expect(record.detail?.contains("AE/2026-10-20") == true)
        // A dry run changes nothing and is not recorded.
        _ = try await fixture.run(["prune", "--dry-run"])
        #expect(AuditLog.records(path: fixture.state + "/audit.log").count == 1)

        let bad = try CtlFixture(regions: ["AE"], extraConfig: "policy:\n  AE:\n    position_decimals: 9")
        let refused = try await bad.run(["prune"])
        #expect(refused.status == 2 && refused.stderr.contains("policy.AE.position_decimals: \"9\" is not allowed"), "\(refused.stderr)")
        let badBool = try CtlFixture(regions: ["AE"], extraConfig: "policy:\n  AE:\n    stream: maybe")
        let alsoRefused = try await badBool.run(["prune"])
        #expect(alsoRefused.status == 2 && alsoRefused.stderr.contains("policy.AE.stream"), "\(alsoRefused.stderr)")
    }

    @Test("status shows each region's policy in a few words")
    func statusShowsThePolicy() async throws {
        let document = """
            {"regions":[{"region":"AE","state":"ok","policy":{"backup":true,"positionDecimals":7,"retentionDays":90,\
            "stream":true}},{"region":"RU","state":"ok","policy":{"backup":false,"positionDecimals":3,\
            "retentionDays":30,"stream":false}}]}
            """
        let server = try OneShotHTTPServer(body: document, requests: 1)
        let fixture = try CtlFixture(regions: ["AE"])
        let table = try await fixture.run(["status", "--admin", "http://127.0.0.1:\(server.port)"])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        // The typed region table (HorgosAdminAPI): POLICY is its last column.
        #expect(lines.contains { $0.hasPrefix("AE ok ") && $0.hasSuffix(" - 90d") }, "\(table.stdout)")
        #expect(
            lines.contains { $0.hasPrefix("RU ok ") && $0.hasSuffix(" - 30d no-stream no-backup pos=3") },
            "\(table.stdout)")
    }

    @Test("pki issue and revoke are recorded with the invoking user")
    func pkiActionsAreAudited() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let ca = fixture.root + "/ca"
        #expect(try await fixture.run(["pki", "init", "--dir", ca]).status == 0)
        let issue = try await fixture.run(["pki", "issue", "vehicle", "--dir", ca, "--vin", testVIN(5).description, "--market", "AE"])
        #expect(issue.status == 0, "\(issue.stderr)")
        let revoke = try await fixture.run(["pki", "revoke", "--vin", testVIN(5).description])
        #expect(revoke.status == 0, "\(revoke.stderr)")
        let records = AuditLog.records(path: fixture.state + "/audit.log")
        #expect(records.map(\.action) == ["pki.issue", "pki.revoke"])
        #expect(records.allSatisfy { $0.outcome == .ok && $0.actor.uid == getuid() && $0.actor.via == "cli" })
        #expect(records.first?.arguments["vin"] == testVIN(5).description && records.first?.detail?.contains("serial") == true)
        #expect(records.last?.arguments["entry"] == "vin:\(testVIN(5))")
        #expect(AuditLog.verify(path: fixture.state + "/audit.log").intact)
        // Where no node state exists (an offline CA), the record goes beside the CA.
        let offline = fixture.root + "/offline.yaml"
        try "state_directory: \(fixture.root)/absent\nregions: [AE]\n".write(toFile: offline, atomically: true, encoding: .utf8)
        let gateway = try await runHorgosctl(["pki", "issue", "gateway", "--dir", ca, "--name", "depot", "--market", "AE", "--config", offline])
        #expect(gateway.status == 0, "\(gateway.stderr)")
        #expect(AuditLog.records(path: ca + "/audit.log").map(\.action) == ["pki.issue"])
    }
}
