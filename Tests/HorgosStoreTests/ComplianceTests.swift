import Foundation
import HorgosGBT32960
import HorgosTestSupport
import HorgosWire
import Synchronization
import Testing

@testable import HorgosStore

/// Erasure by VIN (journal entry kind 4), per-region retention and position coarsening (issue 22).
@Suite(.serialized) struct ComplianceTests {
    /// Whether `bytes` occur in any file of `directory` (the day files, the registry and their WALs).
    static func filesContain(_ directory: String, _ text: String) throws -> [String] {
        let needle = Array(text.utf8)
        var found: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)")))
            guard bytes.count >= needle.count else { continue }
            var index = 0
            while index + needle.count <= bytes.count {
                if bytes[index] == needle[0] && Array(bytes[index..<(index + needle.count)]) == needle {
                    found.append(name)
                    break
                }
                index += 1
            }
        }
        return found
    }

    /// Two days of one vehicle (native records and an event the day before, GB/T 32960 frames today)
    /// beside other vehicles; the erasure removes it from every table of both day files and the registry,
    /// reports what it removed, and its VIN's bytes are no longer in any file of the region.
    @Test func anErasureRemovesTheVehicleFromEveryDayFileAndTableAndItsBytesLeaveTheFiles() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let erased = testVIN(7)
        // Hundreds of vehicles, arriving in another order each day: the B-trees of the vehicles tables and
        // the registry split and rebalance, moving cells (a copy left in a page's free space would be found).
        let kept = (0..<400).map { testVIN(100 + $0) }
        let yesterday = noon - 86_400_000
        let acked = Completions()
        for vin in kept {
            try writer.submitTelemetry(telemetryPayload(vin: vin, baseTimeMs: yesterday, records: simpleRecords(5)),
                                       completion: acked.callback)
        }
        #expect(await acked.wait(for: kept.count))
        #expect(await writer.waitUntilApplied())
        #expect(try await writer.storeTelemetry(telemetryPayload(vin: erased, baseTimeMs: yesterday, records: simpleRecords(30)))
            == CommitOutcome(stored: 30))
        #expect(
            try await writer.storeEvent(
                eventPayload(
                    vin: erased, timeMs: yesterday + 1_000, level: 2, flags: 1 << 3,
                    dtcs: [DiagnosticTroubleCode(code: 0x1234, source: .battery, state: 1)])) == CommitOutcome(stored: 1))
        for seconds in [120, 60] as [Int64] {
            let values = GBT32960IngestTests.values(secondsBefore: seconds)
            #expect(try await writer.storeGBT32960(GBT32960IngestTests.entry(values, vin: erased)) == CommitOutcome(stored: 1))
        }
        for vin in kept.reversed() {
            try writer.submitTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 30_000, records: simpleRecords(3)),
                                       completion: acked.callback)
        }
        #expect(await acked.wait(for: kept.count))
        #expect(await writer.waitUntilApplied())
        let directory = "\(dir.path)/AE"
        #expect(!(try Self.filesContain(directory, erased.description)).isEmpty)

        let reports = Arrivals<EraseReport>()
        try writer.submitErase(erased, applied: reports.callback)
        let report = try #require(await reports.next())
        #expect(report.region == "AE" && report.vin == erased.description && report.lsn > 0)
        #expect(report.telemetryRows == 32, "30 native records and 2 GB/T samples")
        let byFile = Dictionary(uniqueKeysWithValues: report.files.map { ($0.name, $0.rows) })
        let before = byFile["telemetry-2026-11-28.sqlite"] ?? [:]
        #expect(before["telemetry"] == 30 && before["events"] == 1 && before["event_dtcs"] == 1 && before["vehicles"] == 1)
        let today = byFile["telemetry-2026-11-29.sqlite"] ?? [:]
        #expect(today["telemetry"] == 2 && today["gbt_samples"] == 2 && today["gbt_motors"] == 2)
        #expect(today["gbt_cell_voltages", default: 0] > 0 && today["gbt_probe_temperatures", default: 0] > 0)
        #expect(byFile["registry.sqlite"]?["vehicles"] == 1)
        #expect(writer.statistics.erasures == 1)
        // Before any close: the WALs that held older page images were truncated when the erasure committed.
        #expect(try Self.filesContain(directory, erased.description).isEmpty, "secure_delete, WALs truncated")
        store.stop()

        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(erased, fromMs: 0, toMs: .max).isEmpty)
        #expect(try reader.vehicle(erased) == nil)
        #expect(try reader.gbt32960Details(erased) == nil)
        #expect(try reader.holds(erased) == false)
        for vin in kept { #expect(try reader.track(vin, fromMs: 0, toMs: .max).count == 8) }
        #expect(try Self.filesContain(directory, erased.description).isEmpty, "secure_delete, WALs truncated")
        #expect(try Self.filesContain(directory, kept[0].description).count == 3)
    }

    /// Ordered with ingest: the vehicle's frames after the tombstone are stored as usual, registered again
    /// with a new id; an erasure of a vehicle the region does not hold reports nothing and changes nothing.
    @Test func framesAfterTheTombstoneAreStoredAndAnUnknownVINErasesNothing() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let vin = testVIN(3)
        #expect(try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 600_000, records: simpleRecords(10)))
            == CommitOutcome(stored: 10))
        let reports = Arrivals<EraseReport>()
        // The tombstone and the next frame in one journal round: applied in LSN order in one transaction.
        try writer.submitErase(vin, applied: reports.callback)
        #expect(try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 300_000, records: simpleRecords(4)))
            == CommitOutcome(stored: 4))
        #expect(await reports.next()?.telemetryRows == 10)
        // The same records as before the erasure are new again, not duplicates.
        #expect(try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 600_000, records: simpleRecords(2)))
            == CommitOutcome(stored: 2))
        try writer.submitErase(testVIN(99), applied: reports.callback)
        let nothing = try #require(await reports.next())
        #expect(nothing.vin == testVIN(99).description && nothing.files.isEmpty && nothing.totalRows == 0)
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(vin, fromMs: 0, toMs: .max).map(\.timestampMs)
            == [noon - 600_000, noon - 599_000] + (0..<4).map { noon - 300_000 + $0 * 1000 })
        let state = try #require(try reader.vehicle(vin))
        #expect(state.records == 6, "the registry row counts only what came after the erasure")
    }

    /// A standby applies erasures it follows from the stream and takes local `POST /erase` requests for
    /// the same region: a followed tombstone applied before a local one must not answer the local
    /// request (which would report another vehicle's rows as its own and leave its own report unsent).
    @Test func aFollowedErasureAnswersNoLocalEraseRequest() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        let writer = try store.writer(for: ae)
        let followedVIN = testVIN(11)
        let localVIN = testVIN(12)
        for vin in [followedVIN, localVIN] {
            #expect(try await writer.storeTelemetry(telemetryPayload(vin: vin, baseTimeMs: noon - 600_000, records: simpleRecords(5)))
                == CommitOutcome(stored: 5))
        }
        // Both tombstones durable before the applier sees either: the followed one has the lower LSN.
        store.journal.appliersPaused.store(true, ordering: .relaxed)
        let followedDurable = Completions()
        try writer.submitFollowed(
            .erase, Array(followedVIN.description.utf8), arrivalMs: noon - 1_000,
            origin: FollowedOrigin(node: "owner-1", lsn: 40), completion: followedDurable.callback)
        #expect(await followedDurable.wait(for: 1))
        let reports = Arrivals<EraseReport>()
        let localDurable = Arrivals<Bool>()
        try writer.submitErase(localVIN, durable: { localDurable.callback(true) }, applied: reports.callback)
        #expect(await localDurable.wait(for: 1))
        store.journal.appliersPaused.store(false, ordering: .relaxed)
        let report = try #require(await reports.next())
        #expect(report.vin == localVIN.description && report.telemetryRows == 5)
        // Counted after the report is handed over: both erasures were applied, one report was sent.
        #expect(await eventually { writer.statistics.erasures == 2 })
        #expect(reports.count == 1, "the followed erasure answered nobody")
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(followedVIN, fromMs: 0, toMs: .max).isEmpty)
        #expect(try reader.track(localVIN, fromMs: 0, toMs: .max).isEmpty)
    }

    /// A crash leaves the tombstone in the journal with the rows it erases before it and a frame of the
    /// vehicle after it, none applied: the replay at the next start applies them in LSN order, so the
    /// erased rows never reach the files and the later frame is stored. Other vehicles are all replayed.
    @Test func theReplayAppliesTheTombstoneAfterTheRowsItErasesAndBeforeTheFramesAfterIt() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let erased = testVIN(5)
        let other = testVIN(6)
        let tombstone = Array(erased.description.utf8)
        try writeJournalSegment(
            stateDirectory: dir.path, firstLSN: 1, arrivalMs: noon,
            payloads: [
                (.telemetry, telemetryPayload(vin: erased, baseTimeMs: noon - 86_400_000, records: simpleRecords(5))),
                (.telemetry, telemetryPayload(vin: other, baseTimeMs: noon - 60_000, records: simpleRecords(5))),
                (.telemetry, telemetryPayload(vin: erased, baseTimeMs: noon - 60_000, records: simpleRecords(5))),
                (.erase, tombstone),
                (.telemetry, telemetryPayload(vin: erased, baseTimeMs: noon - 10_000, records: simpleRecords(2))),
                (.telemetry, telemetryPayload(vin: other, baseTimeMs: noon - 10_000, records: simpleRecords(2))),
            ])
        let log = LogSink()
        let store = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon), log: log))
        #expect(await store.waitUntilApplied())
        store.stop()
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        #expect(try reader.track(erased, fromMs: 0, toMs: .max).map(\.timestampMs) == [noon - 10_000, noon - 9_000])
        #expect(try reader.track(other, fromMs: 0, toMs: .max).count == 7)
        #expect(log.all.contains { $0.contains("erased vehicle \(erased) at LSN 4 (replayed from the journal)") })
        #expect(ShardStore.appliedLSN(stateDirectory: dir.path, region: ae) == 6)
        // The day before's file held only erased rows: the vehicle is gone from it.
        #expect(try query("\(dir.path)/AE/telemetry-2026-11-28.sqlite", "SELECT count(*) FROM telemetry") == ["0"])
        // A second start replays nothing more and the rows stay gone.
        let again = try ShardStore(configuration: makeConfiguration(dir, clock: TestClock(noon)))
        #expect(await again.waitUntilApplied())
        again.stop()
        #expect(try reader.track(erased, fromMs: 0, toMs: .max).count == 2)
    }

    /// An erasure entry's payload is exactly one VIN: anything else is refused at submission.
    @Test func anEraseEntryIsOneVINAndNothingElse() async {
        let vin = Array(testVIN(1).description.utf8)
        for (payload, expected) in [(vin, 1), (vin + [0], nil), (Array(vin.dropLast()), nil), (Array("LSVTEST0000000O01".utf8), nil)]
            as [([UInt8], Int?)]
        {
            #expect(payload.withUnsafeBytes { JournalEntryKind.erase.rows($0) } == expected)
        }
    }

    /// Two regions with different retention (policy.<CC>.retention_days) prune on their own schedule as
    /// the clock moves: AE keeps 5 days, BR 12.
    @Test func twoRegionsWithDifferentRetentionPruneOnTheirOwnSchedule() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let clock = TestClock(noon)
        var configuration = makeConfiguration(dir, regions: [ae, br], clock: clock)
        configuration.regionPolicies = [ae: RegionStorePolicy(retentionDays: 5), br: RegionStorePolicy(retentionDays: 12)]
        let store = try ShardStore(configuration: configuration)
        let day: Int64 = 86_400_000
        for offset in 0..<5 as Range<Int64> {
            clock.ms = noon + offset * day
            for region in [ae, br] {
                #expect(
                    try await store.writer(for: region).storeTelemetry(
                        telemetryPayload(vin: testVIN(1), baseTimeMs: clock.ms, records: simpleRecords(2))) != nil)
            }
        }
        func days(_ region: Region) -> [String] {
            StoreFiles.partitionDays(in: "\(dir.path)/\(region.code)").map(\.description)
        }
        func waitFor(_ expected: [Region: [String]]) async -> Bool {
            await eventually { expected.allSatisfy({ days($0.key) == $0.value }) }
        }
        let all = ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"]
        #expect(days(ae) == all && days(br) == all)
        // Day 7 (12-06): AE keeps days from 12-01 on (12-06 minus 5); BR keeps everything.
        clock.ms = noon + 7 * day
        #expect(await waitFor([ae: Array(all.dropFirst(2)), br: all]), "AE \(days(ae)), BR \(days(br))")
        // Day 14 (12-13): AE keeps none of these days; BR keeps days from 12-01 on (12-13 minus 12).
        clock.ms = noon + 14 * day
        #expect(await waitFor([ae: [], br: Array(all.dropFirst(2))]), "AE \(days(ae)), BR \(days(br))")
        store.stop()
        #expect(configuration.retentionDays(for: ae) == 5 && configuration.retentionDays(for: Region("DE")!) == 90)
    }

    /// policy.<CC>.position_decimals rounds stored positions (rows and the registry's latest) in that
    /// region only.
    @Test func positionDecimalsRoundStoredPositionsOfThatRegionOnly() async throws {
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var configuration = makeConfiguration(dir, regions: [ae, br], clock: TestClock(noon))
        configuration.regionPolicies = [ae: RegionStorePolicy(positionDecimals: 2)]
        let store = try ShardStore(configuration: configuration)
        var records = simpleRecords(2)
        records[0].latitudeE7 = 251_234_567
        records[0].longitudeE7 = -551_250_000
        records[1].latitudeE7 = -339_876_543
        records[1].longitudeE7 = 1_799_999_999
        for region in [ae, br] {
            #expect(
                try await store.writer(for: region).storeTelemetry(
                    telemetryPayload(vin: testVIN(1), baseTimeMs: noon - 60_000, records: records)) != nil)
        }
        store.stop()
        let coarse = try ShardReader(stateDirectory: dir.path, region: ae).track(testVIN(1), fromMs: 0, toMs: .max)
        #expect(coarse.map(\.latitudeE7) == [251_200_000, -339_900_000])
        #expect(coarse.map(\.longitudeE7) == [-551_300_000, 1_800_000_000])
        #expect(try ShardReader(stateDirectory: dir.path, region: ae).vehicle(testVIN(1))?.latitudeE7 == -339_900_000)
        let exact = try ShardReader(stateDirectory: dir.path, region: br).track(testVIN(1), fromMs: 0, toMs: .max)
        #expect(exact.map(\.latitudeE7) == [251_234_567, -339_876_543])
        #expect(RegionStorePolicy(positionDecimals: 7).positionStep == 1 && RegionStorePolicy().positionStep == 1)
    }
}
