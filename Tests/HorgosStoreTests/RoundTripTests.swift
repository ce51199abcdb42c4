import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

@Suite(.serialized) struct RoundTripTests {
    @Test func everyRecordFieldRoundTripsIncludingNotAvailableAsNULL() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let vin = testVIN(1)
        let full = TelemetryRecord(
            timeOffsetMs: 0, latitudeE7: -337_654_321, longitudeE7: 1_512_345_678, odometerHm: 4_294_967_294,
            speedDkmh: 5_000, headingCdeg: 35_999, packVoltageDv: 15_000, packCurrentDa: -32_767, soc: 100,
            maxCellTemp: 125, minCellTemp: -40, maxAlarmLevel: 3,
            status: VehicleStatus([.ignition, .gnssFix, .doorsOpen]).withGear(4).rawValue, auxBatteryCv: 3_000,
            alarmFlags: 0x0007_FFFF, remainingRangeKm: 2_000)
        let empty = TelemetryRecord(timeOffsetMs: 1000)  // every field "not available"
        let extremes = TelemetryRecord(
            timeOffsetMs: 2000, latitudeE7: 900_000_000, longitudeE7: -1_800_000_000, odometerHm: 0, speedDkmh: 0,
            headingCdeg: 0, packVoltageDv: 0, packCurrentDa: 32_767, soc: 0, maxCellTemp: -40, minCellTemp: 125,
            maxAlarmLevel: 0, status: 0xFFFF, auxBatteryCv: 0, alarmFlags: 0xFFFF_FFFF, remainingRangeKm: 0)
        let base = noon - 60_000
        let outcome = try await store.writer(for: ae).storeTelemetry(
            telemetryPayload(vin: vin, baseTimeMs: base, records: [full, empty, extremes]))
        #expect(outcome == CommitOutcome(stored: 3))
        store.stop()

        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let track = try reader.track(vin, fromMs: base, toMs: base + 3000)
        #expect(track.map { $0.record(baseTimeMs: base) } == [full, empty, extremes])
        #expect(track[1].latitudeE7 == nil && track[1].soc == nil && track[1].packCurrentDa == nil)
        let path = "\(dir.path)/AE/\(UTCDay(epochMs: base).partitionFileName)"
        #expect(try query(path, "SELECT count(*) FROM telemetry WHERE latitude_e7 IS NULL AND soc IS NULL") == ["1"])
        #expect(try query(path, "SELECT count(*) FROM chunks") == ["1"])
    }

    @Test func registryKeepsLatestStateAndLastKnownValues() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        let writer = try store.writer(for: ae)
        let vin = testVIN(2)
        var newest = TelemetryRecord(timeOffsetMs: 10_000, soc: 42, maxCellTemp: 33)  // position not available
        newest.status = 0x1
        let older = TelemetryRecord(timeOffsetMs: 0, latitudeE7: 1, longitudeE7: 2, soc: 90, maxCellTemp: 20)
        // Latest state comes from the newest record of each transaction; "not available" keeps the old value.
        _ = try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 100_000, records: [older]))
        _ = try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 100_000, records: [newest]))
        // A late record older than the newest must not overwrite the latest state.
        _ = try await writer.storeTelemetry(
            telemetryPayload(vin: vin, baseTimeMs: noon - 200_000, records: [TelemetryRecord(soc: 7)]))
        store.stop()
        let state = try #require(try ShardReader(stateDirectory: dir.path, region: ae).vehicle(vin))
        #expect(state.soc == 42)
        #expect(state.maxCellTemp == 33)
        #expect(state.latitudeE7 == 1 && state.longitudeE7 == 2)  // last known position kept
        #expect(state.lastSeenMs == noon - 90_000)
        #expect(state.firstSeenMs == noon - 200_000)
        #expect(state.records == 3)
        #expect(state.status == 0x1)
    }

    @Test func everyFileDescribesItself() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: clock))
        _ = try await store.writer(for: ae).storeTelemetry(
            telemetryPayload(vin: testVIN(3), baseTimeMs: noon, records: simpleRecords(2)))
        store.stop()
        let day = UTCDay(epochMs: noon)
        let partition = "\(dir.path)/AE/\(day.partitionFileName)"
        #expect(try query(partition, "PRAGMA user_version") == ["\(StoreSchema.currentVersion)"])
        #expect(
            try query(partition, "SELECT key || '=' || value FROM meta ORDER BY key") == [
                "created_by=horgos-tests", "kind=telemetry", "partition_end_ms=\(day.endMs)",
                "partition_start_ms=\(day.startMs)", "region=AE", "schema_version=2",
            ])
        #expect(
            try query("\(dir.path)/AE/registry.sqlite", "SELECT value FROM meta WHERE key = 'kind'") == ["registry"])
        #expect(try query(partition, "PRAGMA journal_mode") == ["wal"])
    }
}
