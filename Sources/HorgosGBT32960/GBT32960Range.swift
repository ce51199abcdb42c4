/// The valid raw values ("有效值范围") of every value of the realtime information blocks, from the
/// tables of GB/T 32960.3-2016 section 7.2.3 (and its Annex B for the cell voltages and probe
/// temperatures). A raw value outside its range is **not available**, exactly like the standard's
/// markers (BYTE 0xFE/0xFF, WORD 0xFFFE/0xFFFF, DWORD 0xFFFFFFFE/0xFFFFFFFF, all outside every
/// range here): the block views return nil for it, it is stored as missing, and
/// `GBT32960RealtimeReport.valuesOutOfRange` names it so the listener can count it. Nothing is ever
/// clamped or wrapped into a range.
///
/// The 2025 edition's text was not available (Proto/GBT32960.md section 2): a field whose scaling
/// rtm_con reads as in 2016 keeps the 2016 range; the three fields whose offset changed keep the
/// 2016 rule that the offset is half the range (current 0–60000 for ±3000 A, motor torque
/// 0–400000 for ±20000 N·m; motor speed keeps 0–65531).
public enum GBT32960Range {
    // Table 9, whole vehicle (0x01).
    /// 1 started, 2 off, 3 other.
    public static let vehicleState: ClosedRange<UInt8> = 1...3
    /// 1 parked charging, 2 driving charging, 3 not charging, 4 finished.
    public static let chargingState: ClosedRange<UInt8> = 1...4
    /// 1 electric, 2 hybrid, 3 fuel.
    public static let runningMode: ClosedRange<UInt8> = 1...3
    /// 0–220 km/h in 0.1 km/h.
    public static let speed: ClosedRange<UInt16> = 0...2_200
    /// 0–999,999.9 km in 0.1 km.
    public static let odometer: ClosedRange<UInt32> = 0...9_999_999
    /// 0–1000 V in 0.1 V (also a cell-voltage subsystem's voltage, Annex B).
    public static let voltage: ClosedRange<UInt16> = 0...10_000
    /// 2016: −1000 A..+1000 A in 0.1 A, raw − 10000 (also a subsystem's current and, Table 11, a
    /// motor controller's DC bus current).
    public static let current2016: ClosedRange<UInt16> = 0...20_000
    /// 2025: −3000 A..+3000 A in 0.1 A, raw − 30000 (Horgos's reading, see the type's comment).
    public static let current2025: ClosedRange<UInt16> = 0...60_000
    /// 0–100 %.
    public static let soc: ClosedRange<UInt8> = 0...100
    /// 1 working, 2 off (also the fuel cell's high-voltage DC-DC, Table 12).
    public static let dcdcState: ClosedRange<UInt8> = 1...2
    /// 0–60000 kΩ.
    public static let insulation: ClosedRange<UInt16> = 0...60_000
    /// Accelerator travel and brake travel, 0–100 %.
    public static let pedal: ClosedRange<UInt8> = 0...100
    /// The brake pedal byte's 0x65 ("101"): the brake is on and the unit has no travel value.
    public static let brakeOnWithoutTravel: UInt8 = 0x65

    // Tables 10 and 11, drive motors (0x02).
    /// 1 consuming, 2 generating, 3 off, 4 ready.
    public static let motorState: ClosedRange<UInt8> = 1...4
    /// −40 °C..+210 °C in 1 °C, raw − 40: motor and controller temperatures, the extremes' and
    /// the probes' temperatures (Table 16, Annex B).
    public static let temperature: ClosedRange<UInt8> = 0...250
    /// 2016: −20000..45531 r/min, raw − 20000; 2025 (raw − 32000) keeps the range.
    public static let motorSpeed: ClosedRange<UInt16> = 0...65_531
    /// 2016: −2000..4553.1 N·m in 0.1 N·m, raw − 20000.
    public static let motorTorque2016: ClosedRange<UInt16> = 0...65_531
    /// 2025 (a DWORD): −20000..+20000 N·m in 0.1 N·m, raw − 200000 (Horgos's reading).
    public static let motorTorque2025: ClosedRange<UInt32> = 0...400_000
    /// Controller input voltage, 0–6000 V in 0.1 V.
    public static let motorVoltage: ClosedRange<UInt16> = 0...60_000

    // Table 12, fuel cell (0x03).
    /// Fuel cell voltage 0–2000 V, current 0–2000 A, both in 0.1.
    public static let fuelCellElectrical: ClosedRange<UInt16> = 0...20_000
    /// Fuel consumption 0–600 kg/100 km in 0.01; also the engine's fuel rate 0–600 L/100 km
    /// (Table 13) and the highest hydrogen concentration 0–60000 mg/kg.
    public static let sixtyThousand: ClosedRange<UInt16> = 0...60_000
    /// A fuel-cell probe temperature, −40..+200 °C, raw − 40.
    public static let fuelCellProbeTemperature: ClosedRange<UInt8> = 0...240
    /// The hydrogen system's highest temperature, −40..+200 °C in 0.1 °C, raw − 400.
    public static let hydrogenTemperature: ClosedRange<UInt16> = 0...2_400
    /// The code of a hydrogen temperature probe, concentration or pressure sensor.
    public static let hydrogenSensor: ClosedRange<UInt8> = 1...252
    /// The highest hydrogen pressure, 0–100 MPa in 0.1 MPa.
    public static let hydrogenPressure: ClosedRange<UInt16> = 0...1_000

    // Table 13, engine (0x04).
    /// 1 running, 2 off.
    public static let engineState: ClosedRange<UInt8> = 1...2
    /// Crankshaft speed 0–60000 r/min.
    public static let crankshaft: ClosedRange<UInt16> = 0...60_000

    // Tables 14 and 15, position (0x05): degrees × 10^6 (magnitudes; the status bits give the sign).
    public static let longitude: ClosedRange<UInt32> = 0...180_000_000
    public static let latitude: ClosedRange<UInt32> = 0...90_000_000
    /// 2025: 1 WGS-84, 2 GCJ-02, 3 other.
    public static let coordinateSystem: ClosedRange<UInt8> = 1...3

    // Table 16, extreme values (0x06).
    /// Subsystem, cell and probe numbers of the extremes.
    public static let extremeNumber: ClosedRange<UInt8> = 1...250
    /// The highest and lowest cell voltage, 0–15 V in 1 mV.
    public static let extremeCellVoltage: ClosedRange<UInt16> = 0...15_000

    // Table 17, alarms (0x07).
    /// 0 no fault, 1–3 (3 most severe).
    public static let alarmLevel: ClosedRange<UInt8> = 0...3

    // Annex B, cell voltages (0x08) and probe temperatures (0x09).
    /// One cell's voltage, 0–60 V in 1 mV.
    public static let cellVoltage: ClosedRange<UInt16> = 0...60_000

    /// The current range of `edition`.
    @inlinable
    public static func current(_ edition: GBT32960Edition) -> ClosedRange<UInt16> {
        edition == .edition2025 ? current2025 : current2016
    }
}

/// A value of the realtime information blocks, by the name Horgos counts it under when its raw
/// value is outside its `GBT32960Range` (`horgos_gbt32960_values_out_of_range_total{field}`).
public enum GBT32960ValueField: Int, Sendable, Hashable, CaseIterable {
    case vehicleState, chargingState, runningMode, speed, odometer, totalVoltage, totalCurrent, soc, dcdcState
    case insulation, acceleratorPedal, brakePedal
    case motorState, motorControllerTemperature, motorSpeed, motorTorque, motorTemperature, motorVoltage
    case motorCurrent
    case fuelCellVoltage, fuelCellCurrent, fuelConsumption, fuelCellProbeTemperature, hydrogenMaxTemperature
    case hydrogenTemperatureProbe, hydrogenMaxConcentration, hydrogenConcentrationSensor, hydrogenMaxPressure
    case hydrogenPressureSensor, fuelCellDCDCState
    case engineState, crankshaftSpeed, fuelRate
    case longitude, latitude, coordinateSystem
    case maxVoltageSubsystem, maxVoltageCell, maxCellVoltage, minVoltageSubsystem, minVoltageCell, minCellVoltage
    case maxTemperatureSubsystem, maxTemperatureProbe, maxTemperature, minTemperatureSubsystem
    case minTemperatureProbe, minTemperature
    case alarmLevel
    case subsystemVoltage, subsystemCurrent, cellVoltage, probeTemperature

    /// The snake_case name (metric label, logs, Proto/GBT32960.md section 7): `fuelCellDCDCState` is
    /// `fuel_cell_dcdc_state`.
    public var name: String {
        let characters = Array("\(self)")
        var out = ""
        for (index, character) in characters.enumerated() {
            guard character.isUppercase else {
                out.append(character)
                continue
            }
            let previousIsLower = index > 0 && characters[index - 1].isLowercase
            let startsWord = index + 1 < characters.count && characters[index + 1].isLowercase && index > 0
            if previousIsLower || startsWord { out.append("_") }
            out += character.lowercased()
        }
        return out
    }
}

/// The fields of one report whose raw value was outside its range (markers are not counted: they
/// are the standard's own way to say "not available").
public struct GBT32960OutOfRange: Sendable, Hashable {
    /// One bit per `GBT32960ValueField.rawValue`.
    public var bits: UInt64 = 0

    @inlinable public init() {}

    @inlinable public var isEmpty: Bool { bits == 0 }

    @inlinable
    public mutating func insert(_ field: GBT32960ValueField) { bits |= 1 << UInt64(field.rawValue) }

    @inlinable
    public func contains(_ field: GBT32960ValueField) -> Bool { bits & (1 << UInt64(field.rawValue)) != 0 }

    /// The fields, in declaration order.
    public var fields: [GBT32960ValueField] { GBT32960ValueField.allCases.filter(contains) }

    /// Notes `field` when `raw` is outside `range` and not one of the type's two markers.
    @inline(__always)
    mutating func check<T: FixedWidthInteger & UnsignedInteger>(
        _ field: GBT32960ValueField, _ raw: T, _ range: ClosedRange<T>
    ) {
        if !range.contains(raw) && raw < T.max - 1 { insert(field) }
    }
}
