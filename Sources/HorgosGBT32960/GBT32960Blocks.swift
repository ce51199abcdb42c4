// Views of the realtime information blocks. Each reads its fields at fixed offsets from the start
// of its body (the byte after the type); `GBT32960RealtimeReport` has checked the lengths. Accessors
// without `raw` in their name turn the standard's "abnormal"/"invalid" markers, and any raw value
// outside the field's valid range (`GBT32960Range`), into nil and apply the offset, so a value that
// exists is a physical quantity in the unit named and inside the standard's range. A view made for a
// 2025 report (`edition`) reads that edition's layout (Proto/GBT32960.md section 2); a field the
// edition does not have is nil.

/// 0x01 whole vehicle data (20 bytes; 18 in the 2025 edition, which has no pedal positions).
public struct GBT32960VehicleData {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    /// 1 started, 2 off, 3 other.
    @inlinable public var vehicleState: UInt8? { bytes.byteValue(0, GBT32960Range.vehicleState) }
    /// 1 parked charging, 2 driving charging, 3 not charging, 4 charging finished.
    @inlinable public var chargingState: UInt8? { bytes.byteValue(1, GBT32960Range.chargingState) }
    /// 1 pure electric, 2 hybrid, 3 fuel.
    @inlinable public var runningMode: UInt8? { bytes.byteValue(2, GBT32960Range.runningMode) }
    /// Speed in 0.1 km/h (0–220 km/h).
    @inlinable public var speedDkmh: UInt16? { bytes.wordValue(3, GBT32960Range.speed) }
    /// Accumulated mileage in 0.1 km (0–999,999.9 km).
    @inlinable public var odometerHm: UInt32? { bytes.dwordValue(5, GBT32960Range.odometer) }
    /// Total voltage in 0.1 V (0–1000 V).
    @inlinable public var totalVoltageDv: UInt16? { bytes.wordValue(9, GBT32960Range.voltage) }
    /// Total current in 0.1 A (raw − 10000: ±1000 A; 2025: raw − 30000, ±3000 A; negative is charging).
    @inlinable
    public var totalCurrentDa: Int32? {
        let offset: Int32 = edition == .edition2025 ? 30_000 : 10_000
        return bytes.wordValue(11, GBT32960Range.current(edition)).map { Int32($0) - offset }
    }
    @inlinable public var totalCurrentRaw: UInt16 { bytes.word(11) }
    /// State of charge in % (0–100).
    @inlinable public var soc: UInt8? { bytes.byteValue(13, GBT32960Range.soc) }
    /// DC-DC state: 1 working, 2 off.
    @inlinable public var dcdcState: UInt8? { bytes.byteValue(14, GBT32960Range.dcdcState) }
    /// Gear byte as sent (2016 Annex A, Table A.1): bits 0–3 gear (0 neutral, 1–12, 13 reverse,
    /// 14 drive, 15 park), bit 4 = 1 braking force, bit 5 = 1 driving force, bits 6–7 reserved;
    /// 2025: bit 7 set = gear position invalid.
    @inlinable public var gear: UInt8 { bytes.byte(15) }
    /// Whether the gear nibble is a gear (always in 2016; 2025: bit 7 clear).
    @inlinable public var gearValid: Bool { edition == .edition2016 || bytes.byte(15) & 0x80 == 0 }
    /// Whether the gear byte says braking force (bit 4).
    @inlinable public var brakingForce: Bool { bytes.byte(15) & 0x10 != 0 }
    /// Whether the gear byte says driving force (bit 5).
    @inlinable public var drivingForce: Bool { bytes.byte(15) & 0x20 != 0 }
    /// Insulation resistance in kΩ (0–60000).
    @inlinable public var insulationKohm: UInt16? { bytes.wordValue(16, GBT32960Range.insulation) }
    /// Accelerator pedal travel in % (0–100); nil in the 2025 edition.
    @inlinable
    public var acceleratorPedal: UInt8? { edition == .edition2016 ? bytes.byteValue(18, GBT32960Range.pedal) : nil }
    /// Brake pedal travel in % (0–100); nil for 0x65 (brake on, no travel value: see `brakeOn`),
    /// and in the 2025 edition.
    @inlinable
    public var brakePedal: UInt8? { edition == .edition2016 ? bytes.byteValue(19, GBT32960Range.pedal) : nil }
    /// Whether the brake is on: travel 1–100 or 0x65 (on, no travel value) is true, 0 is false;
    /// nil for a marker, a value outside those, and in the 2025 edition.
    @inlinable
    public var brakeOn: Bool? {
        guard edition == .edition2016 else { return nil }
        let raw = bytes.byte(19)
        if raw == GBT32960Range.brakeOnWithoutTravel { return true }
        return GBT32960Range.pedal.contains(raw) ? raw > 0 : nil
    }
    @inlinable public var brakeRaw: UInt8 { bytes.byte(19) }
    @inlinable public var vehicleStateRaw: UInt8 { bytes.byte(0) }
    @inlinable public var chargingStateRaw: UInt8 { bytes.byte(1) }
    @inlinable public var runningModeRaw: UInt8 { bytes.byte(2) }
    @inlinable public var socRaw: UInt8 { bytes.byte(13) }
    @inlinable public var dcdcStateRaw: UInt8 { bytes.byte(14) }
    /// 2016 only.
    @inlinable public var acceleratorRaw: UInt8 { bytes.byte(18) }
    @inlinable public var speedRaw: UInt16 { bytes.word(3) }
    @inlinable public var odometerRaw: UInt32 { bytes.dword(5) }
    @inlinable public var totalVoltageRaw: UInt16 { bytes.word(9) }
    @inlinable public var insulationRaw: UInt16 { bytes.word(16) }
}

/// 0x02 drive motors: a count, then 12 bytes per motor (10 in the 2025 edition).
public struct GBT32960DriveMotors {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    /// Bytes per motor in `edition`.
    @inlinable
    public static func motorSize(_ edition: GBT32960Edition) -> Int { edition == .edition2025 ? 10 : 12 }

    @inlinable public var count: Int { Int(bytes.byte(0)) }
    @inlinable
    public subscript(index: Int) -> GBT32960DriveMotor {
        precondition(index >= 0 && index < count)
        let size = Self.motorSize(edition)
        return GBT32960DriveMotor(bytes.slice(1 + size * index, size), edition: edition)
    }
}

/// One drive motor of a 0x02 block.
///
/// ```
///   2016: number state ctrl_temp speed(WORD) torque(WORD) temp voltage(WORD) current(WORD)
///   2025: number state ctrl_temp speed(WORD) torque(DWORD) temp
/// ```
public struct GBT32960DriveMotor {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    @inlinable var is2025: Bool { edition == .edition2025 }

    /// Motor number (1–253).
    @inlinable public var number: UInt8 { bytes.byte(0) }
    /// 1 consuming, 2 generating, 3 off, 4 ready.
    @inlinable public var state: UInt8? { bytes.byteValue(1, GBT32960Range.motorState) }
    /// Controller temperature in °C (raw − 40).
    @inlinable
    public var controllerTemperature: Int16? {
        bytes.byteValue(2, GBT32960Range.temperature).map { Int16($0) - 40 }
    }
    /// Speed in r/min (raw − 20000; 2025: raw − 32000).
    @inlinable
    public var speedRpm: Int32? {
        bytes.wordValue(3, GBT32960Range.motorSpeed).map { Int32($0) - (is2025 ? 32_000 : 20_000) }
    }
    /// Torque in 0.1 N·m (WORD raw − 20000; 2025: DWORD raw − 200000, i.e. −20000 N·m).
    @inlinable
    public var torqueDnm: Int64? {
        is2025
            ? bytes.dwordValue(5, GBT32960Range.motorTorque2025).map { Int64($0) - 200_000 }
            : bytes.wordValue(5, GBT32960Range.motorTorque2016).map { Int64($0) - 20_000 }
    }
    /// Motor temperature in °C (raw − 40).
    @inlinable
    public var temperature: Int16? {
        bytes.byteValue(is2025 ? 9 : 7, GBT32960Range.temperature).map { Int16($0) - 40 }
    }
    /// Controller input voltage in 0.1 V; nil in the 2025 edition.
    @inlinable
    public var inputVoltageDv: UInt16? { is2025 ? nil : bytes.wordValue(8, GBT32960Range.motorVoltage) }
    /// Controller DC bus current in 0.1 A (raw − 10000); nil in the 2025 edition.
    @inlinable
    public var dcBusCurrentDa: Int32? {
        is2025 ? nil : bytes.wordValue(10, GBT32960Range.current2016).map { Int32($0) - 10_000 }
    }
    @inlinable public var stateRaw: UInt8 { bytes.byte(1) }
    @inlinable public var controllerTemperatureRaw: UInt8 { bytes.byte(2) }
    @inlinable public var speedRaw: UInt16 { bytes.word(3) }
    /// The torque as sent (a WORD widened in 2016, the DWORD in 2025).
    @inlinable public var torqueRaw: UInt32 { is2025 ? bytes.dword(5) : UInt32(bytes.word(5)) }
    @inlinable public var temperatureRaw: UInt8 { bytes.byte(is2025 ? 9 : 7) }
    /// 2016 only (the 2025 motor has no voltage or current).
    @inlinable public var inputVoltageRaw: UInt16 { bytes.word(8) }
    @inlinable public var dcBusCurrentRaw: UInt16 { bytes.word(10) }
}

/// 0x03 fuel cell: voltage, current, consumption, probe temperatures, hydrogen maxima, DC-DC.
public struct GBT32960FuelCell {
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Fuel cell voltage in 0.1 V.
    @inlinable public var voltageDv: UInt16? { bytes.wordValue(0, GBT32960Range.fuelCellElectrical) }
    /// Fuel cell current in 0.1 A.
    @inlinable public var currentDa: UInt16? { bytes.wordValue(2, GBT32960Range.fuelCellElectrical) }
    /// Fuel consumption in 0.01 kg/100 km.
    @inlinable public var consumption: UInt16? { bytes.wordValue(4, GBT32960Range.sixtyThousand) }
    @inlinable public var probeCount: Int { Int(bytes.word(6)) }
    /// Probe `index`'s temperature in °C (raw − 40).
    @inlinable
    public func probeTemperature(_ index: Int) -> Int16? {
        precondition(index >= 0 && index < probeCount)
        return bytes.byteValue(8 + index, GBT32960Range.fuelCellProbeTemperature).map { Int16($0) - 40 }
    }
    @inlinable public func probeTemperatureRaw(_ index: Int) -> UInt8 { bytes.byte(8 + index) }
    @inlinable var rest: Int { 8 + probeCount }
    /// Highest hydrogen system temperature in 0.1 °C (raw − 400).
    @inlinable
    public var hydrogenMaxTemperatureDc: Int32? {
        bytes.wordValue(rest, GBT32960Range.hydrogenTemperature).map { Int32($0) - 400 }
    }
    @inlinable public var hydrogenMaxTemperatureRaw: UInt16 { bytes.word(rest) }
    @inlinable
    public var hydrogenMaxTemperatureProbe: UInt8? { bytes.byteValue(rest + 2, GBT32960Range.hydrogenSensor) }
    /// Highest hydrogen concentration in mg/kg.
    @inlinable
    public var hydrogenMaxConcentration: UInt16? { bytes.wordValue(rest + 3, GBT32960Range.sixtyThousand) }
    @inlinable public var hydrogenMaxConcentrationRaw: UInt16 { bytes.word(rest + 3) }
    @inlinable
    public var hydrogenConcentrationSensor: UInt8? { bytes.byteValue(rest + 5, GBT32960Range.hydrogenSensor) }
    /// Highest hydrogen pressure in 0.1 MPa.
    @inlinable
    public var hydrogenMaxPressure: UInt16? { bytes.wordValue(rest + 6, GBT32960Range.hydrogenPressure) }
    @inlinable
    public var hydrogenPressureSensor: UInt8? { bytes.byteValue(rest + 8, GBT32960Range.hydrogenSensor) }
    /// High-voltage DC-DC state: 1 working, 2 off.
    @inlinable public var dcdcState: UInt8? { bytes.byteValue(rest + 9, GBT32960Range.dcdcState) }
    @inlinable public var voltageRaw: UInt16 { bytes.word(0) }
    @inlinable public var currentRaw: UInt16 { bytes.word(2) }
    @inlinable public var consumptionRaw: UInt16 { bytes.word(4) }
    @inlinable public var hydrogenMaxPressureRaw: UInt16 { bytes.word(rest + 6) }
}

/// 0x04 engine (5 bytes; 2025: 2 bytes, the crankshaft speed only).
public struct GBT32960Engine {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    @inlinable var is2025: Bool { edition == .edition2025 }

    /// 1 running, 2 off; nil in the 2025 edition.
    @inlinable public var state: UInt8? { is2025 ? nil : bytes.byteValue(0, GBT32960Range.engineState) }
    /// Crankshaft speed in r/min.
    @inlinable public var crankshaftRpm: UInt16? { bytes.wordValue(is2025 ? 0 : 1, GBT32960Range.crankshaft) }
    /// Fuel consumption rate in 0.01 L/100 km; nil in the 2025 edition.
    @inlinable public var fuelRate: UInt16? { is2025 ? nil : bytes.wordValue(3, GBT32960Range.sixtyThousand) }
    @inlinable public var crankshaftRaw: UInt16 { bytes.word(is2025 ? 0 : 1) }
    /// 2016 only.
    @inlinable public var fuelRateRaw: UInt16 { bytes.word(3) }
}

/// 0x05 vehicle position (9 bytes): status bits, then longitude and latitude in 1e-6 degrees.
/// The 2025 edition (10 bytes) puts a coordinate-system byte after the status.
public struct GBT32960Position {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    /// Offset of the longitude (the latitude follows it).
    @inlinable var longitudeOffset: Int { edition == .edition2025 ? 2 : 1 }

    /// Bit 0: 1 = no valid fix; bit 1: 1 = south; bit 2: 1 = west.
    @inlinable public var status: UInt8 { bytes.byte(0) }
    @inlinable public var hasValidFix: Bool { status & 1 == 0 }
    /// 2025: the coordinate system, 1 WGS-84, 2 GCJ-02, 3 other (nil: 2016, or a marker).
    @inlinable
    public var coordinateSystem: UInt8? {
        edition == .edition2025 ? bytes.byteValue(1, GBT32960Range.coordinateSystem) : nil
    }
    /// Whether the coordinates are WGS-84: always in 2016 (the edition names no other), 2025 when
    /// `coordinateSystem` is 1.
    @inlinable public var isWGS84: Bool { edition == .edition2016 || coordinateSystem == 1 }
    /// Longitude magnitude in 1e-6 degrees, as sent.
    @inlinable public var longitudeRaw: UInt32 { bytes.dword(longitudeOffset) }
    /// Latitude magnitude in 1e-6 degrees, as sent.
    @inlinable public var latitudeRaw: UInt32 { bytes.dword(longitudeOffset + 4) }
    /// Signed latitude in 1e-7 degrees (south negative) in the unit's coordinate system; nil
    /// without a valid fix or out of range.
    @inlinable
    public var latitudeE7: Int32? {
        guard hasValidFix, let raw = bytes.dwordValue(longitudeOffset + 4, GBT32960Range.latitude) else { return nil }
        let value = Int32(raw) * 10
        return status & 2 != 0 ? -value : value
    }
    /// Signed longitude in 1e-7 degrees (west negative) in the unit's coordinate system; nil
    /// without a valid fix or out of range.
    @inlinable
    public var longitudeE7: Int32? {
        guard hasValidFix, let raw = bytes.dwordValue(longitudeOffset, GBT32960Range.longitude) else { return nil }
        let value = Int32(raw) * 10
        return status & 4 != 0 ? -value : value
    }
}

/// 0x06 extreme values (14 bytes): highest/lowest cell voltage and temperature with where they are.
public struct GBT32960Extremes {
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var maxVoltageSubsystem: UInt8? { bytes.byteValue(0, GBT32960Range.extremeNumber) }
    @inlinable public var maxVoltageCell: UInt8? { bytes.byteValue(1, GBT32960Range.extremeNumber) }
    /// Highest cell voltage in mV.
    @inlinable public var maxCellVoltageMv: UInt16? { bytes.wordValue(2, GBT32960Range.extremeCellVoltage) }
    @inlinable public var minVoltageSubsystem: UInt8? { bytes.byteValue(4, GBT32960Range.extremeNumber) }
    @inlinable public var minVoltageCell: UInt8? { bytes.byteValue(5, GBT32960Range.extremeNumber) }
    /// Lowest cell voltage in mV.
    @inlinable public var minCellVoltageMv: UInt16? { bytes.wordValue(6, GBT32960Range.extremeCellVoltage) }
    @inlinable public var maxTemperatureSubsystem: UInt8? { bytes.byteValue(8, GBT32960Range.extremeNumber) }
    @inlinable public var maxTemperatureProbe: UInt8? { bytes.byteValue(9, GBT32960Range.extremeNumber) }
    /// Highest probe temperature in °C (raw − 40).
    @inlinable
    public var maxTemperature: Int16? { bytes.byteValue(10, GBT32960Range.temperature).map { Int16($0) - 40 } }
    @inlinable public var minTemperatureSubsystem: UInt8? { bytes.byteValue(11, GBT32960Range.extremeNumber) }
    @inlinable public var minTemperatureProbe: UInt8? { bytes.byteValue(12, GBT32960Range.extremeNumber) }
    /// Lowest probe temperature in °C (raw − 40).
    @inlinable
    public var minTemperature: Int16? { bytes.byteValue(13, GBT32960Range.temperature).map { Int16($0) - 40 } }
    /// The byte at `offset` as sent (0, 1, 4, 5, 8, 9, 11, 12: subsystem, cell and probe numbers).
    @inlinable public func numberRaw(_ offset: Int) -> UInt8 { bytes.byte(offset) }
    @inlinable public var maxCellVoltageRaw: UInt16 { bytes.word(2) }
    @inlinable public var minCellVoltageRaw: UInt16 { bytes.word(6) }
    @inlinable public var maxTemperatureRaw: UInt8 { bytes.byte(10) }
    @inlinable public var minTemperatureRaw: UInt8 { bytes.byte(13) }
}

/// Which fault-code list of a 0x07 block.
public enum GBT32960FaultSource: UInt8, Sendable, Hashable, CaseIterable {
    /// Rechargeable energy storage device faults.
    case energyStorage = 1
    case driveMotor = 2
    case engine = 3
    case other = 4
}

/// 0x07 alarms (2025: type 0x06): highest level, general alarm flags, then four fault-code lists;
/// the 2025 edition adds a list of (general alarm bit, level) pairs.
public struct GBT32960Alarms {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    /// Highest alarm level: 0 none, 1–3 (3 most severe); a marker or another value is nil (the
    /// byte as sent is `maxLevelRaw`).
    @inlinable public var maxLevel: UInt8? { bytes.byteValue(0, GBT32960Range.alarmLevel) }
    @inlinable public var maxLevelRaw: UInt8 { bytes.byte(0) }
    /// The general alarm flags (Table 18): bit 0 temperature difference … bit 18; the 2025 edition
    /// adds bits 19–27 (motor over-speed … fuel-cell stack over-temperature). Horgos's own
    /// `alarm_flags` uses the same bits 0–18.
    @inlinable public var generalFlags: UInt32 { bytes.dword(1) }

    /// 2025: the general alarms with their levels (nil in 2016).
    @inlinable
    public var levelledAlarms: GBT32960LevelledAlarms? {
        guard edition == .edition2025 else { return nil }
        var o = 5
        for _ in 0..<4 { o += 1 + 4 * Int(bytes.byte(o)) }
        return GBT32960LevelledAlarms(bytes.slice(o + 1, 2 * Int(bytes.byte(o))))
    }

    /// One of the four fault-code lists.
    @inlinable
    public func faults(_ source: GBT32960FaultSource) -> GBT32960FaultCodes {
        var o = 5
        for _ in 1..<Int(source.rawValue) { o += 1 + 4 * Int(bytes.byte(o)) }
        let count = Int(bytes.byte(o))
        return GBT32960FaultCodes(bytes.slice(o + 1, 4 * count))
    }
}

/// The 2025 list of general alarms with a level each: pairs of (bit of the general alarm flags,
/// level 1–3), as sent.
public struct GBT32960LevelledAlarms: RandomAccessCollection {
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { bytes.count / 2 }
    /// The `index`th pair: the alarm's bit number and its level.
    @inlinable
    public subscript(index: Int) -> (alarm: UInt8, level: UInt8) {
        precondition(index >= 0 && index < endIndex)
        return (bytes.byte(2 * index), bytes.byte(2 * index + 1))
    }
    /// The pairs as sent (2 bytes each).
    @inlinable public var rawBytes: UnsafeRawBufferPointer { bytes }
}

/// One fault-code list: DWORD codes defined by the manufacturer.
public struct GBT32960FaultCodes: RandomAccessCollection {
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { bytes.count / 4 }
    @inlinable
    public subscript(index: Int) -> UInt32 {
        precondition(index >= 0 && index < endIndex)
        return bytes.dword(4 * index)
    }

    /// A concrete iterator: the generic `IndexingIterator` allocated per loop in debug builds.
    @inlinable public func makeIterator() -> Iterator { Iterator(bytes: bytes, offset: 0) }

    /// Walks the codes.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let bytes: UnsafeRawBufferPointer
        @usableFromInline var offset: Int
        @inlinable init(bytes: UnsafeRawBufferPointer, offset: Int) {
            self.bytes = bytes
            self.offset = offset
        }
        @inlinable @inline(__always)
        public mutating func next() -> UInt32? {
            guard offset + 4 <= bytes.count else { return nil }
            defer { offset += 4 }
            return bytes.dword(offset)
        }
    }
}

/// 0x08 cell voltages (2025: type 0x07): per energy storage subsystem, the cells this frame carries.
public struct GBT32960CellVoltages: Sequence {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        (self.bytes, self.edition) = (bytes, edition)
    }

    /// Number of subsystems in the block.
    @inlinable public var subsystemCount: Int { Int(bytes.byte(0)) }

    @inlinable
    public func makeIterator() -> Iterator {
        Iterator(bytes: bytes, left: subsystemCount, offset: 1, edition: edition)
    }

    /// Walks the subsystems (each has a variable length).
    public struct Iterator: IteratorProtocol {
        @usableFromInline let bytes: UnsafeRawBufferPointer
        @usableFromInline var left: Int
        @usableFromInline var offset: Int
        @usableFromInline let edition: GBT32960Edition
        @inlinable init(bytes: UnsafeRawBufferPointer, left: Int, offset: Int, edition: GBT32960Edition) {
            self.bytes = bytes
            self.left = left
            self.offset = offset
            self.edition = edition
        }
        @inlinable @inline(__always)
        public mutating func next() -> GBT32960CellVoltageSubsystem? {
            guard left > 0 else { return nil }
            left -= 1
            let size = edition == .edition2025
                ? 7 + 2 * Int(bytes.word(offset + 5)) : 10 + 2 * Int(bytes.byte(offset + 9))
            defer { offset += size }
            return GBT32960CellVoltageSubsystem(bytes.slice(offset, size), edition: edition)
        }
    }
}

/// One subsystem of a 0x08 block (2025: of a 0x07 block).
///
/// ```
///   2016: number voltage(WORD) current(WORD) total_cells(WORD) first_cell(WORD) n(BYTE) n × WORD
///   2025: number voltage(WORD) current(WORD) n(WORD) n × WORD            (the whole list, no split)
/// ```
public struct GBT32960CellVoltageSubsystem {
    public let bytes: UnsafeRawBufferPointer
    public let edition: GBT32960Edition
    /// Cells in this frame.
    public let frameCellCount: Int
    /// Offset of the first cell voltage (read once: the cell loop is the decoder's hot path).
    @usableFromInline let cellsOffset: Int
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) {
        self.bytes = bytes
        self.edition = edition
        if edition == .edition2025 {
            (frameCellCount, cellsOffset) = (Int(bytes.word(5)), 7)
        } else {
            (frameCellCount, cellsOffset) = (Int(bytes.byte(9)), 10)
        }
    }

    @inlinable var is2025: Bool { edition == .edition2025 }

    @inlinable public var number: UInt8 { bytes.byte(0) }
    /// Subsystem voltage in 0.1 V.
    @inlinable public var voltageDv: UInt16? { bytes.wordValue(1, GBT32960Range.voltage) }
    @inlinable public var voltageRaw: UInt16 { bytes.word(1) }
    /// Subsystem current in 0.1 A (raw − 10000; 2025: raw − 30000).
    @inlinable
    public var currentDa: Int32? {
        bytes.wordValue(3, GBT32960Range.current(edition)).map { Int32($0) - (is2025 ? 30_000 : 10_000) }
    }
    @inlinable public var currentRaw: UInt16 { bytes.word(3) }
    /// Cells the subsystem has in total (2025: the cells of this frame, which carries all of them).
    @inlinable public var totalCells: Int { is2025 ? frameCellCount : Int(bytes.word(5)) }
    /// Number of this frame's first cell (1-based per the standard; some units send 0; 2025: 1).
    @inlinable public var firstCell: Int { is2025 ? 1 : Int(bytes.word(7)) }
    /// Cell `index` of this frame (0-based) in mV.
    @inlinable
    public func cellVoltageMv(_ index: Int) -> UInt16? {
        precondition(index >= 0 && index < frameCellCount)
        return bytes.wordValue(cellsOffset + 2 * index, GBT32960Range.cellVoltage)
    }
    @inlinable public func cellVoltageRaw(_ index: Int) -> UInt16 { bytes.word(cellsOffset + 2 * index) }
    /// The frame's cell voltages as sent (2 bytes each, big-endian).
    @inlinable public var cellBytes: UnsafeRawBufferPointer { bytes.slice(cellsOffset, 2 * frameCellCount) }
}

/// 0x09 probe temperatures (2025: type 0x08, same layout): per energy storage subsystem, every probe.
public struct GBT32960ProbeTemperatures: Sequence {
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var subsystemCount: Int { Int(bytes.byte(0)) }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(bytes: bytes, left: subsystemCount, offset: 1) }

    /// Walks the subsystems (each has a variable length).
    public struct Iterator: IteratorProtocol {
        @usableFromInline let bytes: UnsafeRawBufferPointer
        @usableFromInline var left: Int
        @usableFromInline var offset: Int
        @inlinable init(bytes: UnsafeRawBufferPointer, left: Int, offset: Int) {
            self.bytes = bytes
            self.left = left
            self.offset = offset
        }
        @inlinable @inline(__always)
        public mutating func next() -> GBT32960ProbeSubsystem? {
            guard left > 0 else { return nil }
            left -= 1
            let size = 3 + Int(bytes.word(offset + 1))
            defer { offset += size }
            return GBT32960ProbeSubsystem(bytes.slice(offset, size))
        }
    }
}

/// One subsystem of a 0x09 block.
public struct GBT32960ProbeSubsystem {
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var number: UInt8 { bytes.byte(0) }
    @inlinable public var probeCount: Int { Int(bytes.word(1)) }
    /// Probe `index`'s temperature in °C (raw − 40).
    @inlinable
    public func temperature(_ index: Int) -> Int16? {
        precondition(index >= 0 && index < probeCount)
        return bytes.byteValue(3 + index, GBT32960Range.temperature).map { Int16($0) - 40 }
    }
    @inlinable public func temperatureRaw(_ index: Int) -> UInt8 { bytes.byte(3 + index) }
    /// The probe temperatures as sent (1 byte each, raw).
    @inlinable public var probeBytes: UnsafeRawBufferPointer { bytes.slice(3, probeCount) }
}
