import HorgosWire
import Testing

@testable import HorgosSimulator

@Suite struct FleetModelTests {
    @Test func apportionSpreadsExactlyTheFleetByWeight() {
        for count in [0, 1, 7, 41, 1000, 2345] {
            let shares = SimulatedRegion.apportion(count)
            #expect(shares.reduce(0) { $0 + $1.1 } == count)
        }
        let shares = Dictionary(uniqueKeysWithValues: SimulatedRegion.apportion(10_000).map { ($0.0.code, $0.1) })
        // AE has weight 8 and BH weight 1: the split follows the weights.
        #expect(shares["AE"]! > 6 * shares["BH"]!)
        #expect(SimulatedRegion.all.count == 41)
    }

    @Test func vinsAreValidUniqueAndCarryTheirCheckDigit() {
        var seen = Set<VIN>()
        for index in 0..<5000 {
            let vin = VINFactory.vin(index: index, seed: 7)
            let characters = Array(vin.description.utf8)
            #expect(characters.count == 17)
            #expect(VINFactory.checkDigit(characters) == characters[8])
            seen.insert(vin)
        }
        #expect(seen.count == 5000)
        // A known VIN with a published check digit: 1M8GDM9AXKP042788 (the ISO 3779 textbook example).
        #expect(VINFactory.checkDigit(Array("1M8GDM9AXKP042788".utf8)) == UInt8(ascii: "X"))
    }

    @Test func aDayOfDrivingStaysInsideTheRegionAndProducesValidRecords() throws {
        let region = try #require(SimulatedRegion.named("AE"))
        var vehicle = SimulatedVehicle(vin: VINFactory.vin(index: 1, seed: 1), region: region, seed: 42)
        var records: [TelemetryRecord] = []
        for _ in 0..<(24 * 360) { records.append(vehicle.step(seconds: 10)) }
        for record in records {
            let lat = Double(record.latitudeE7) / 1e7
            let lon = Double(record.longitudeE7) / 1e7
            let distance = ((lat - region.latitude) * (lat - region.latitude)
                + (lon - region.longitude) * (lon - region.longitude)).squareRoot()
            #expect(distance <= region.radiusDegrees + 0.01)
            #expect(record.soc <= 100)
        }
        // Every record passes the server's own range validation.
        var frame: [UInt8] = []
        FrameEncoder.appendTelemetry(vin: vehicle.vin, baseTimeMs: 1_700_000_000_000, records: records.prefix(1000),
                                     sequence: 1, to: &frame)
        try frame.withUnsafeBytes { raw in
            let decoded = try #require(try FrameDecoder().decodeMessage(raw))
            guard case .telemetry(let batch) = decoded else { Issue.record("not telemetry"); return }
            #expect(batch.count == 1000)
        }
        // The day contains driving (speed), charging (negative current) and parking.
        #expect(records.contains { $0.speedDkmh > 200 })
        #expect(records.contains { $0.packCurrentDa < 0 })
        #expect(records.contains { $0.speedDkmh == 0 })
    }

    @Test func chargingRaisesStateOfChargeAndDrivingLowersIt() {
        let region = SimulatedRegion.named("NO")!
        var vehicle = SimulatedVehicle(vin: VINFactory.vin(index: 2, seed: 1), region: region, seed: 3)
        var previous = vehicle.soc
        var sawRise = false
        var sawFall = false
        for _ in 0..<20_000 {
            let record = vehicle.step(seconds: 5)
            if record.packCurrentDa < -10 && vehicle.soc > previous { sawRise = true }
            if record.speedDkmh > 100 && vehicle.soc < previous { sawFall = true }
            previous = vehicle.soc
        }
        #expect(sawRise)
        #expect(sawFall)
    }
}
