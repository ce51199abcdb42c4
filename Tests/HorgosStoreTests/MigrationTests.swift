import Foundation
import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

/// Files as release 1 (schema version 1) wrote them: no EVENT storage, no rejected/events counters.
enum SchemaV1 {
    static let registry = """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE vehicles(
            id INTEGER PRIMARY KEY, vin TEXT NOT NULL UNIQUE,
            first_seen INTEGER, last_seen INTEGER, last_received INTEGER,
            latitude_e7 INTEGER, longitude_e7 INTEGER, speed_dkmh INTEGER, soc INTEGER,
            max_cell_temp INTEGER, min_cell_temp INTEGER, status INTEGER,
            max_alarm_level INTEGER, alarm_flags INTEGER NOT NULL DEFAULT 0, alarm_time INTEGER,
            records INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0);
        INSERT INTO meta VALUES ('kind', 'registry'), ('region', 'AE'), ('schema_version', '1'), ('created_by', 'v1');
        PRAGMA user_version = 1;
        """
    static func partition(_ day: UTCDay) -> String {
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE vehicles(id INTEGER PRIMARY KEY, vin TEXT NOT NULL);
        CREATE TABLE telemetry(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL,
            latitude_e7 INTEGER, longitude_e7 INTEGER, odometer_hm INTEGER, speed_dkmh INTEGER,
            heading_cdeg INTEGER, pack_voltage_dv INTEGER, pack_current_da INTEGER, soc INTEGER,
            max_cell_temp INTEGER, min_cell_temp INTEGER, max_alarm_level INTEGER, status INTEGER NOT NULL,
            aux_battery_cv INTEGER, alarm_flags INTEGER NOT NULL, remaining_range_km INTEGER);
        CREATE TABLE chunks(
            vehicle_id INTEGER NOT NULL, t_min INTEGER NOT NULL, t_max INTEGER NOT NULL,
            first_rowid INTEGER NOT NULL, row_count INTEGER NOT NULL,
            PRIMARY KEY(vehicle_id, t_min, first_rowid)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('kind', 'telemetry'), ('region', 'AE'), ('schema_version', '1'),
            ('partition_start_ms', '\(day.startMs)'), ('partition_end_ms', '\(day.endMs)'), ('created_by', 'v1');
        PRAGMA user_version = 1;
        """
    }
}

@Suite(.serialized) struct MigrationTests {
    @Test func version1FilesAreMigratedInPlaceKeepingTheirData() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let vin = testVIN(7)
        let day = UTCDay(epochMs: noon)
        try FileManager.default.createDirectory(atPath: "\(dir.path)/AE", withIntermediateDirectories: true)
        do {
            let registry = try SQLiteConnection(path: "\(dir.path)/AE/registry.sqlite", readOnly: false)
            try registry.exec(SchemaV1.registry)
            try registry.exec(
                "INSERT INTO vehicles(id, vin, first_seen, last_seen, soc, records) "
                    + "VALUES (7, '\(vin)', \(noon - 2000), \(noon - 1000), 55, 2)"
            )
            let partition = try SQLiteConnection(path: "\(dir.path)/AE/\(day.partitionFileName)", readOnly: false)
            try partition.exec(SchemaV1.partition(day))
            try partition.exec(
                """
                INSERT INTO vehicles VALUES (7, '\(vin)');
                INSERT INTO telemetry(vehicle_id, ts, soc, status, alarm_flags) VALUES (7, \(noon - 2000), 54, 0, 0);
                INSERT INTO telemetry(vehicle_id, ts, soc, status, alarm_flags) VALUES (7, \(noon - 1000), 55, 0, 0);
                INSERT INTO chunks VALUES (7, \(noon - 2000), \(noon - 1000), 1, 2);
                """)
        }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        // The old rows are known to dedup, new ones append, and EVENT storage (new in v2) works.
        let resend = telemetryPayload(vin: vin, baseTimeMs: noon - 2000, records: simpleRecords(3))
        #expect(try await writer.storeTelemetry(resend) == CommitOutcome(stored: 1, duplicates: 2))
        let event = eventPayload(
            vin: vin, timeMs: noon, level: 2, flags: 0, dtcs: [DiagnosticTroubleCode(code: 9, source: .other, state: 1)]
        )
        #expect(try await writer.storeEvent(event) == CommitOutcome(stored: 1))
        store.stop()

        for file in ["registry.sqlite", day.partitionFileName] {
            #expect(try query("\(dir.path)/AE/\(file)", "PRAGMA user_version") == ["2"])
            #expect(try query("\(dir.path)/AE/\(file)", "SELECT value FROM meta WHERE key = 'schema_version'") == ["2"])
        }
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let state = try #require(try reader.vehicle(vin))
        #expect(state.records == 3 && state.duplicates == 2 && state.rejected == 0 && state.events == 1)
        #expect(state.activeDTCs.map(\.code) == [9])
        #expect(try reader.track(vin, fromMs: 0, toMs: .max).map(\.timestampMs) == [noon - 2000, noon - 1000, noon])
        #expect(reader.integrityCheck().allSatisfy { $0.ok })
    }

    @Test func aFileFromANewerVersionIsRefusedNotWritten() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: "\(dir.path)/AE", withIntermediateDirectories: true)
        do {
            let registry = try SQLiteConnection(path: "\(dir.path)/AE/registry.sqlite", readOnly: false)
            try registry.exec("CREATE TABLE future(x); PRAGMA user_version = 99")
        }
        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon), log: log))
        defer { store.stop(timeoutMs: 0) }
        let writer = try store.writer(for: ae)
        #expect(
            await writer.waitForState {
                if case .degraded(.incompatibleFile, let message) = $0 { message.contains("99") } else { false }
            })
        #expect(try query("\(dir.path)/AE/registry.sqlite", "PRAGMA user_version") == ["99"])
        #expect(log.all.contains { $0.contains("schema_too_new") })
    }

    @Test func aFileOfAnotherRegionIsRefused() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        do {
            let store = try ShardStore(configuration: makeConfiguration(dir, regions: [br], clock: clock))
            _ = try await store.writer(for: br).storeTelemetry(
                telemetryPayload(vin: testVIN(1), baseTimeMs: noon, records: simpleRecords(1)))
            store.stop()
        }
        try FileManager.default.moveItem(atPath: "\(dir.path)/BR", toPath: "\(dir.path)/AE")
        let error = #expect(throws: StoreError.self) {
            try ShardReader(stateDirectory: dir.path, region: ae).fleetHealth()
        }
        #expect(error?.kind == .foreignFile)
    }
}
