import HorgosWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One simulated electric vehicle: drives, parks and charges like a real one, and reports records.
///
/// The model is simple physics, chosen so that the data looks right to an operator: SOC falls while
/// driving (about 0.15 kWh/km on a 60 kWh pack) and rises while charging (7 kW AC or 60-120 kW DC);
/// pack voltage follows SOC (96 cells in series, 3.2-4.15 V each) and sags under load; current is
/// power over voltage (positive when driving, negative when charging); cell temperatures follow
/// ambient plus load; the position moves along a heading and stays inside the region's circle.
/// Alarms appear when the state calls for them (SOC low, cells hot) plus rare random faults.
public struct SimulatedVehicle: Sendable {
    /// What the vehicle is doing now.
    public enum Activity: Sendable, Hashable {
        case parked
        case driving
        case charging(fast: Bool)
    }

    public let vin: VIN
    public let region: SimulatedRegion
    public private(set) var activity: Activity = .parked
    public private(set) var soc: Double
    public private(set) var latitude: Double
    public private(set) var longitude: Double
    public private(set) var headingDegrees: Double
    public private(set) var speedKmh: Double = 0
    public private(set) var odometerKm: Double
    public private(set) var cellTemperature: Double
    public private(set) var alarmFlags: UInt32 = 0
    var secondsLeftInActivity: Double = 0
    var random: SimRandom
    let ambient: Double
    let packKWh = 60.0

    public init(vin: VIN, region: SimulatedRegion, seed: UInt64) {
        var random = SimRandom(seed: seed)
        self.vin = vin
        self.region = region
        self.soc = 20 + random.unit() * 75
        let angle = random.unit() * 2 * Double.pi
        let distance = region.radiusDegrees * random.unit().squareRoot() * 0.9
        self.latitude = region.latitude + distance * sin(angle)
        self.longitude = region.longitude + distance * cos(angle)
        self.headingDegrees = random.unit() * 360
        self.odometerKm = 500 + random.unit() * 60_000
        // Hot markets are hot: a rough ambient temperature from latitude.
        self.ambient = 35 - abs(region.latitude) * 0.45 + random.unit() * 4
        self.cellTemperature = ambient
        self.random = random
        self.secondsLeftInActivity = random.unit() * 600
        self.activity = random.unit() < 0.5 ? .driving : .parked
    }

    /// Advances the model by `seconds` and returns the record describing the new state.
    public mutating func step(seconds: Double, timeOffsetMs: UInt32 = 0) -> TelemetryRecord {
        secondsLeftInActivity -= seconds
        if secondsLeftInActivity <= 0 { chooseNextActivity() }
        var powerKW = 0.3  // standby consumers
        switch activity {
        case .parked:
            speedKmh = max(0, speedKmh - 20 * seconds)
        case .driving:
            let target = 25 + random.unit() * 70
            speedKmh += (target - speedKmh) * min(1, 0.2 * seconds)
            headingDegrees = (headingDegrees + (random.unit() - 0.5) * 20 * min(seconds, 10) + 360)
                .truncatingRemainder(dividingBy: 360)
            move(seconds: seconds)
            powerKW = 4 + speedKmh * 0.15 + random.unit() * 6
        case .charging(let fast):
            speedKmh = 0
            let taper = soc > 80 ? 0.35 : 1
            powerKW = -(fast ? 60 + random.unit() * 60 : 7) * taper
            if soc >= 99.5 { chooseNextActivity() }
        }
        soc = min(100, max(0, soc - powerKW * seconds / 3600 / packKWh * 100))
        let cellVolts = 3.2 + 0.95 * soc / 100
        let openCircuit = cellVolts * 96
        let currentA = powerKW * 1000 / openCircuit
        let voltage = openCircuit - currentA * 0.08
        let heating = abs(powerKW) / 12
        cellTemperature += ((ambient + heating) - cellTemperature) * min(1, seconds / 600)
        updateAlarms()
        var status: VehicleStatus = [.gnssFix]
        switch activity {
        case .driving: status.formUnion(.ignition); status = status.withGear(4)
        case .parked: status = status.withGear(1)
        case .charging(let fast):
            status.formUnion([.pluggedIn, fast ? .dcFastCharging : .charging])
            status = status.withGear(1)
        }
        let level: UInt8 = alarmFlags == 0 ? 0 : (alarmFlags & AlarmBit.insulation.mask != 0 ? 3 : 1)
        return TelemetryRecord(
            timeOffsetMs: timeOffsetMs,
            latitudeE7: Int32((latitude * 1e7).rounded()), longitudeE7: Int32((longitude * 1e7).rounded()),
            odometerHm: UInt32(odometerKm * 10), speedDkmh: UInt16(min(5000, speedKmh * 10)),
            headingCdeg: UInt16(min(35_999, headingDegrees * 100)), packVoltageDv: UInt16(voltage * 10),
            packCurrentDa: Int16(clamping: Int((currentA * 10).rounded())), soc: UInt8(soc.rounded()),
            maxCellTemp: Int8(clamping: Int((cellTemperature + 2).rounded())),
            minCellTemp: Int8(clamping: Int((cellTemperature - 2).rounded())), maxAlarmLevel: level,
            status: status.rawValue, auxBatteryCv: UInt16(1_230 + random.unit() * 150), alarmFlags: alarmFlags,
            remainingRangeKm: UInt16(soc * 4.2))
    }

    mutating func chooseNextActivity() {
        let roll = random.unit()
        switch activity {
        case .driving:
            if soc < 25 || roll < 0.15 {
                activity = .charging(fast: random.unit() < 0.4)
                secondsLeftInActivity = 1800 + random.unit() * 5400
            } else {
                activity = .parked
                secondsLeftInActivity = 300 + random.unit() * 3600
            }
        case .parked, .charging:
            activity = soc < 15 ? .charging(fast: true) : .driving
            secondsLeftInActivity = 600 + random.unit() * 2400
        }
    }

    mutating func move(seconds: Double) {
        let kilometres = speedKmh * seconds / 3600
        odometerKm += kilometres
        let radians = headingDegrees * Double.pi / 180
        let latitudeStep = kilometres / 111.0 * cos(radians)
        let longitudeStep = kilometres / (111.0 * max(0.2, cos(latitude * Double.pi / 180))) * sin(radians)
        latitude += latitudeStep
        longitude += longitudeStep
        let dLat = latitude - region.latitude
        let dLon = longitude - region.longitude
        if (dLat * dLat + dLon * dLon).squareRoot() > region.radiusDegrees {
            // Turn back toward the anchor so the track never leaves the region.
            latitude -= latitudeStep
            longitude -= longitudeStep
            headingDegrees = (atan2(-dLon, -dLat) * 180 / Double.pi + 360).truncatingRemainder(dividingBy: 360)
        }
    }

    mutating func updateAlarms() {
        var flags: UInt32 = 0
        if soc < 10 { flags |= AlarmBit.socLow.mask }
        if cellTemperature > 52 { flags |= AlarmBit.batteryHighTemperature.mask }
        // Rare random faults that persist a while: insulation or cell consistency.
        let persistent = alarmFlags & (AlarmBit.insulation.mask | AlarmBit.cellConsistency.mask)
        if persistent != 0 {
            flags |= random.unit() < 0.995 ? persistent : 0
        } else if random.unit() < 0.0005 {
            flags |= random.unit() < 0.5 ? AlarmBit.insulation.mask : AlarmBit.cellConsistency.mask
        }
        alarmFlags = flags
    }
}
