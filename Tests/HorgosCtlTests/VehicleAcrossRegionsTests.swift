import Foundation
import HorgosStore
import HorgosTestSupport
import HorgosWire
import Testing

/// `horgosctl vehicle VIN` for a VIN with data in several regions (a unit re-certified for another
/// market, a gateway's vehicle): the region that saw it last is shown and every other is named.
@Suite("horgosctl vehicle across regions")
struct VehicleAcrossRegionsTests {
    @Test("the newest region is shown, the others are named, and --region picks one")
    func vehicleInTwoRegions() async throws {
        let fixture = try CtlFixture(regions: ["AE", "BR", "MX"])
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE", "BR", "MX"], nowMs: noon)
        let vin = testVIN(21)
        try await writer.store("AE", vin, baseTimeMs: noon - 60 * 60_000, minuteRecords(3))
        try await writer.store("BR", vin, baseTimeMs: noon - 10 * 60_000, minuteRecords(4))
        writer.stop()

        let both = try await fixture.run(["vehicle", vin.description, "--json"])
        #expect(both.status == 0, "\(both.stderr)")
        let report = try both.json()
        #expect(report["region"] as? String == "BR", "the region that saw the VIN last")
        let others = try #require(report["otherRegions"] as? [[String: Any]])
        #expect(others.count == 1)
        #expect(others.first?["region"] as? String == "AE")
        #expect(others.first?["records"] as? Int == 3)
        #expect(others.first?["lastSeenMs"] as? Int64 == noon - 58 * 60_000)

        let text = try await fixture.run(["vehicle", vin.description])
        #expect(text.status == 0)
        #expect(text.stdout.contains("also in region AE: 3 records"))
        #expect(text.stdout.contains("horgosctl vehicle \(vin) --region AE"))

        let one = try await fixture.run(["vehicle", vin.description, "--region", "AE", "--json"]).json()
        #expect(one["region"] as? String == "AE")
        #expect((one["otherRegions"] as? [Any])?.isEmpty == true, "--region looks in that region only")
    }

    /// GB/T 32960.3-2016 Annex A, Table A.1: gear bits 0–3, bit 4 braking force, bit 5 driving force.
    @Test("the GB/T gear byte is shown as the standard defines its bits")
    func gearByteDecoded() async throws {
        let fixture = try CtlFixture(regions: ["AE"])
        let writer = try FleetWriter(stateDirectory: fixture.state, regions: ["AE"], nowMs: noon)
        let vin = testVIN(22)
        // Table 2 envelope, Table 7 time (Beijing 19:59:00 = 11:59:00 UTC), Table 9 block with gear 0x13.
        var unit: [UInt8] = [26, 11, 29, 19, 59, 0, 0x01, 1, 3, 1, 0x01, 0xD4, 0, 0x01, 0x19, 0xB8, 0x18, 0xFD]
        unit += [0x1D, 0x5D, 26, 1, 0x13, 0x11, 0x5C, 0, 6]
        var frame: [UInt8] = [0x23, 0x23, 0x02, 0xFE] + Array(vin.description.utf8) + [0x01, 0, UInt8(unit.count)]
        frame += unit
        frame.append(frame[2...].reduce(0, ^))
        let entry = frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: 8 * 3600) }
        try await writer.storeEntry("AE", .gbt32960, entry)
        writer.stop()
        let run = try await fixture.run(["vehicle", vin.description])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("gear 3, braking force (byte 0x13)"), "\(run.stdout)")
    }
}
