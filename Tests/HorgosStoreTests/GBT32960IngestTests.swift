import Foundation
import HorgosGBT32960
import HorgosWire
import HorgosTestSupport
import Testing

@testable import HorgosStore

/// GB/T 32960 frames through the real writer: the same day partitions and de-duplication as native
/// records, the mapped columns, the typed tables, and the battery-health read.
@Suite(.serialized) struct GBT32960IngestTests {
    static let beijing = GBT32960Format.beijingUTCOffsetSeconds

    static func entry(_ values: GBT32960RealtimeValues, vin: VIN, command: GBT32960Command = .realtime) -> [UInt8] {
        var frame: [UInt8] = []
        let field = GBT32960VINField(vin)
        GBT32960Encoder.appendFrame(edition: values.edition, command: command, vin: field, to: &frame) {
            values.appendDataUnit(to: &$0)
        }
        return frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: beijing) }
    }

    static func values(secondsBefore noonSeconds: Int64, seed: Int = 1) -> GBT32960RealtimeValues {
        .typical(seed: seed, time: GBT32960Time(epochSeconds: noon / 1000 - noonSeconds, utcOffsetSeconds: beijing))
    }

    @Test func aRealtimeFrameIsOneRowWithItsMappedColumnsAndTypedTablesAndAReissueIsADuplicate() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let vin = testVIN(1)
        var values = Self.values(secondsBefore: 60)
        values.alarms?.maxLevel = 2
        values.alarms?.flags = 1 << 11
        #expect(try await writer.storeGBT32960(Self.entry(values, vin: vin)) == CommitOutcome(stored: 1))
        #expect(
            try await writer.storeGBT32960(Self.entry(values, vin: vin, command: .reissue))
                == CommitOutcome(duplicates: 1))
        // The second half of a split cell list, same collection time: a duplicate sample, new cells.
        var rest = values
        rest.cellSubsystems?[0].firstCell = 97
        rest.cellSubsystems?[0].cells = [4_100, 3_900]
        #expect(try await writer.storeGBT32960(Self.entry(rest, vin: vin)) == CommitOutcome(duplicates: 1))
        // Outside the horizon (8 days old) is rejected; an entry that does not decode too.
        #expect(
            try await writer.storeGBT32960(Self.entry(Self.values(secondsBefore: 8 * 86_400), vin: vin))
                == CommitOutcome(rejected: 1))
        var broken = Self.entry(values, vin: vin)
        broken[broken.count - 1] ^= 0xFF
        #expect(try await writer.storeGBT32960(broken) == CommitOutcome(rejected: 1))
        store.stop()

        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let ts = values.time.epochSeconds(utcOffsetSeconds: Self.beijing) * 1000
        #expect(ts == noon - 60_000)  // Beijing time read as UTC+8
        let track = try reader.track(vin, fromMs: ts - 1, toMs: ts + 1)
        #expect(track.count == 1)
        let row = try #require(track.first)
        let v = try #require(values.vehicle)
        #expect(row.speedDkmh == v.speed && row.odometerHm == v.odometer && row.soc == v.soc)
        #expect(row.packVoltageDv == v.voltage && row.packCurrentDa == Int16(Int(v.current) - 10_000))
        #expect(row.latitudeE7 == Int32(values.position!.latitude) * 10 && row.headingCdeg == nil)
        #expect(row.maxCellTemp == 30 && row.minCellTemp == 20)
        #expect(row.maxAlarmLevel == 2 && row.alarmFlags == 1 << 11)
        #expect(row.status & 0x1 == 0x1 && row.status & 0x8 == 0x8)  // ignition, GNSS fix
        let state = try #require(try reader.vehicle(vin))
        #expect(state.records == 1 && state.duplicates == 2 && state.rejected == 1 && state.soc == v.soc)
        let details = try #require(try reader.gbt32960Details(vin))
        #expect(details.cellsReported == 66)  // 64 + the 2 of the split frame
        #expect(details.cellSpreadMv == 4_100 - 3_900)
        #expect(details.maxCellMv == 3_998 && details.maxCellSubsystem == 1 && details.insulationKohm == 5_000)
        #expect(details.probesReported == 16 && details.probeSpreadC == 9)
        #expect(details.motors.map(\.speedRpm) == [Int(values.motors![0].speed) - 20_000])
        #expect(details.faults == [GBT32960Details.Fault(source: 1, code: 0x1001)])
        let health = try reader.batteryHealth(nil, fromMs: ts - 1, toMs: ts + 1)
        #expect(health.map(\.cellSpreadMv) == [200] && health.first?.insulationKohm == 5_000)
        #expect(health.first?.temperatureSpreadC == 9)
    }

    @Test func a2025FrameIsStoredLikeA2016OneWithItsOwnScalingAndItsEditionRow() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let vin = testVIN(3)
        let time = GBT32960Time(epochSeconds: noon / 1000 - 120, utcOffsetSeconds: Self.beijing)
        var values = GBT32960RealtimeValues.typical2025(seed: 2, time: time)
        values.vehicle?.gear = 0x8E  // bit 7: gear position invalid
        values.alarms?.levelled = [[11, 3]]
        #expect(try await writer.storeGBT32960(Self.entry(values, vin: vin)) == CommitOutcome(stored: 1))
        let reissue = Self.entry(values, vin: vin, command: .reissue)
        #expect(try await writer.storeGBT32960(reissue) == CommitOutcome(duplicates: 1))
        var gcj = GBT32960RealtimeValues.typical2025(
            seed: 3, time: GBT32960Time(epochSeconds: noon / 1000 - 119, utcOffsetSeconds: Self.beijing))
        gcj.position?.coordinateSystem = 2
        #expect(try await writer.storeGBT32960(Self.entry(gcj, vin: vin)) == CommitOutcome(stored: 1))
        store.stop()

        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        let ts = noon - 120_000
        let track = try reader.track(vin, fromMs: ts - 1, toMs: ts + 1_001)
        #expect(track.count == 2)
        let row = try #require(track.first)
        let v = try #require(values.vehicle)
        #expect(row.packCurrentDa == Int16(Int(v.current) - 30_000) && row.speedDkmh == v.speed)
        #expect(row.latitudeE7 == Int32(values.position!.latitude) * 10 && row.status & 0x8 == 0x8)
        #expect(row.status & 0x70 == 0, "an invalid gear position is not mapped")
        let probes = values.probeSubsystems![0].temperatures.map { Int8(Int($0) - 40) }
        #expect(row.maxCellTemp == probes.max() && row.minCellTemp == probes.min())
        #expect(track[1].latitudeE7 == nil && track[1].status & 0x8 == 0, "GCJ-02 is not a native coordinate")
        let details = try #require(try reader.gbt32960Details(vin))
        #expect(details.motors.map(\.torqueDnm) == [Int(gcj.motors![0].torque) - 200_000])
        #expect(details.motors.map(\.voltageDv) == [nil] && details.cellsReported == 64)
        let file = "\(dir.path)/AE/\(UTCDay(epochMs: ts).partitionFileName)"
        let edition2025 = try query(
            file, "SELECT coordinate_system || ',' || signature_algorithm || ',' || signature_bytes"
                + " || ',' || ifnull(hex(levelled_alarms), '') FROM gbt_2025_samples ORDER BY ts")
        #expect(edition2025 == ["1,2,256,0B03", "2,2,256,0001"])
        let samples = try query(
            file, "SELECT ifnull(accelerator_pct, 'na') || ',' || ifnull(max_cell_mv, 'na') || ',' || gear"
                + " FROM gbt_samples ORDER BY ts")
        #expect(samples.first == "na,na,142")
    }

    @Test func nativeAndGBT32960RecordsShareTheDayPartitionAndItsDeduplication() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let vin = testVIN(2)
        let values = Self.values(secondsBefore: 3_600)
        let ts = values.time.epochSeconds(utcOffsetSeconds: Self.beijing) * 1000
        // A native record at the same time as the GB/T sample: the GB/T frame is then a duplicate.
        let native = telemetryPayload(vin: vin, baseTimeMs: ts, records: simpleRecords(1))
        #expect(try await writer.storeTelemetry(native) == CommitOutcome(stored: 1))
        #expect(try await writer.storeGBT32960(Self.entry(values, vin: vin)) == CommitOutcome(duplicates: 1))
        #expect(
            try await writer.storeGBT32960(Self.entry(Self.values(secondsBefore: 3_590), vin: vin))
                == CommitOutcome(stored: 1))
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(vin, fromMs: ts, toMs: ts + 60_000).map(\.timestampMs) == [ts, ts + 10_000])
        #expect(try reader.inventory().filter { $0.kind == "telemetry" }.count == 1)
    }
}

extension RegionWriter {
    /// Submits a GB/T 32960 entry, waits for its acknowledgement (the journal round) and for the
    /// applier; returns what the applier did (from the statistics' change), nil on timeout.
    func storeGBT32960(_ entry: [UInt8], seconds: Double = 20) async throws -> CommitOutcome? {
        try await stored(seconds: seconds) { try submitGBT32960(entry, completion: $0) }
    }
}
