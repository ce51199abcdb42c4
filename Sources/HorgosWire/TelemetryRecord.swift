/// One telemetry record read in place: every field is loaded from its fixed offset when asked.
///
/// A view holds only a pointer into the frame's bytes; it is valid while those bytes are. Values
/// are the raw wire values (see PROTOCOL.md 4.3 for units); compare with `TelemetryRecord.NotAvailable`.
public struct TelemetryRecordView {
    /// The record's bytes (at least 40; a later version's extra bytes are not included).
    public let bytes: UnsafeRawBufferPointer
    /// The batch's base time, to which `timeOffsetMs` is added.
    public let baseTimeMs: Int64

    @inlinable
    public init(bytes: UnsafeRawBufferPointer, baseTimeMs: Int64) {
        self.bytes = bytes
        self.baseTimeMs = baseTimeMs
    }

    @inlinable public var timeOffsetMs: UInt32 { bytes.u32(0) }
    /// Device timestamp in ms since the epoch (UTC).
    @inlinable public var timestampMs: Int64 { baseTimeMs &+ Int64(timeOffsetMs) }
    @inlinable public var latitudeE7: Int32 { bytes.i32(4) }
    @inlinable public var longitudeE7: Int32 { bytes.i32(8) }
    @inlinable public var odometerHm: UInt32 { bytes.u32(12) }
    @inlinable public var speedDkmh: UInt16 { bytes.u16(16) }
    @inlinable public var headingCdeg: UInt16 { bytes.u16(18) }
    @inlinable public var packVoltageDv: UInt16 { bytes.u16(20) }
    @inlinable public var packCurrentDa: Int16 { bytes.i16(22) }
    @inlinable public var soc: UInt8 { bytes.u8(24) }
    @inlinable public var maxCellTemp: Int8 { bytes.i8(25) }
    @inlinable public var minCellTemp: Int8 { bytes.i8(26) }
    @inlinable public var maxAlarmLevel: UInt8 { bytes.u8(27) }
    @inlinable public var status: UInt16 { bytes.u16(28) }
    @inlinable public var auxBatteryCv: UInt16 { bytes.u16(30) }
    @inlinable public var alarmFlags: UInt32 { bytes.u32(32) }
    @inlinable public var remainingRangeKm: UInt16 { bytes.u16(36) }

    /// Copies every field into a value (used by tests, tools and the encoder; not the hot path).
    public var record: TelemetryRecord {
        TelemetryRecord(
            timeOffsetMs: timeOffsetMs, latitudeE7: latitudeE7, longitudeE7: longitudeE7, odometerHm: odometerHm,
            speedDkmh: speedDkmh, headingCdeg: headingCdeg, packVoltageDv: packVoltageDv,
            packCurrentDa: packCurrentDa, soc: soc, maxCellTemp: maxCellTemp, minCellTemp: minCellTemp,
            maxAlarmLevel: maxAlarmLevel, status: status, auxBatteryCv: auxBatteryCv, alarmFlags: alarmFlags,
            remainingRangeKm: remainingRangeKm)
    }

    /// Whether every defined field is in its valid range or "not available" (PROTOCOL.md 4.3).
    ///
    /// The hot-path check: each comparison is folded into one flag without a branch per field (a
    /// value and its sentinel are shifted so that "valid or not available" is one unsigned compare
    /// where it can be). `validate(index:)` names the field when this says no.
    @inlinable
    public var isValid: Bool {
        @inline(__always) get {
            // u16 fields whose sentinel is 0xFFFF: v + 1 wraps the sentinel to 0, so bad iff v + 1 > max + 1.
            var bad: UInt32 = (speedDkmh &+ 1 > 5_001 ? 1 : 0) | (headingCdeg &+ 1 > 36_000 ? 1 : 0)
            bad |= (packVoltageDv &+ 1 > 15_001 ? 1 : 0) | (auxBatteryCv &+ 1 > 3_001 ? 1 : 0)
            bad |= remainingRangeKm &+ 1 > 2_001 ? 1 : 0
            // u8 fields whose sentinel is 0xFF, the same way.
            bad |= (soc &+ 1 > 101 ? 1 : 0) | (maxAlarmLevel &+ 1 > 4 ? 1 : 0)
            // Coordinates: shifted so the valid range starts at 0; the sentinel lands at a known value.
            let lat = UInt32(bitPattern: latitudeE7) &+ 900_000_000
            bad |= (lat > 1_800_000_000 && lat != 0x7FFF_FFFF &+ 900_000_000) ? 1 : 0
            let lon = UInt32(bitPattern: longitudeE7) &+ 1_800_000_000
            bad |= (lon > 3_600_000_000 && lon != 0x7FFF_FFFF &+ 1_800_000_000) ? 1 : 0
            // Temperatures -40...125 shift to 0...165; the sentinel -128 lands at 168.
            let maxT = UInt8(bitPattern: maxCellTemp) &+ 40
            let minT = UInt8(bitPattern: minCellTemp) &+ 40
            bad |= (maxT > 165 && maxT != 168 ? 1 : 0) | (minT > 165 && minT != 168 ? 1 : 0)
            return bad == 0
        }
    }

    /// Checks every defined field against its valid range (PROTOCOL.md 4.3); `index` names the record.
    @inlinable
    public func validate(index: Int) throws(FrameError) {
        if isValid { return }
        try validateFieldByField(index: index)
    }

    /// The slow path of `validate`: finds the first field out of range, in wire order.
    @usableFromInline
    func validateFieldByField(index: Int) throws(FrameError) {
        typealias NA = TelemetryRecord.NotAvailable
        let lat = latitudeE7
        if lat != NA.coordinate && (lat < -900_000_000 || lat > 900_000_000) {
            throw .invalidFieldValue(field: "latitude", record: index)
        }
        let lon = longitudeE7
        if lon != NA.coordinate && (lon < -1_800_000_000 || lon > 1_800_000_000) {
            throw .invalidFieldValue(field: "longitude", record: index)
        }
        let speed = speedDkmh
        if speed != NA.u16 && speed > 5_000 { throw .invalidFieldValue(field: "speed", record: index) }
        let heading = headingCdeg
        if heading != NA.u16 && heading > 35_999 { throw .invalidFieldValue(field: "heading", record: index) }
        let voltage = packVoltageDv
        if voltage != NA.u16 && voltage > 15_000 { throw .invalidFieldValue(field: "pack_voltage", record: index) }
        let soc = self.soc
        if soc != NA.u8 && soc > 100 { throw .invalidFieldValue(field: "soc", record: index) }
        let maxT = maxCellTemp
        if maxT != NA.temperature && (maxT < -40 || maxT > 125) {
            throw .invalidFieldValue(field: "max_cell_temp", record: index)
        }
        let minT = minCellTemp
        if minT != NA.temperature && (minT < -40 || minT > 125) {
            throw .invalidFieldValue(field: "min_cell_temp", record: index)
        }
        let level = maxAlarmLevel
        if level != NA.u8 && level > 3 { throw .invalidFieldValue(field: "max_alarm_level", record: index) }
        let aux = auxBatteryCv
        if aux != NA.u16 && aux > 3_000 { throw .invalidFieldValue(field: "aux_battery_voltage", record: index) }
        let range = remainingRangeKm
        if range != NA.u16 && range > 2_000 { throw .invalidFieldValue(field: "remaining_range", record: index) }
    }
}

/// One telemetry record as plain values: what a client fills in and what tests compare.
///
/// Field names carry their unit: E7 = 1e-7 degree, Hm = 0.1 km, Dkmh = 0.1 km/h, Cdeg = 0.01 degree,
/// Dv = 0.1 V, Da = 0.1 A, Cv = 0.01 V. "Not available" is the sentinel in `NotAvailable`.
public struct TelemetryRecord: Sendable, Hashable {
    /// The "not available" sentinels of PROTOCOL.md 4.3.
    public enum NotAvailable {
        public static let coordinate: Int32 = 0x7FFF_FFFF
        public static let u32: UInt32 = 0xFFFF_FFFF
        public static let u16: UInt16 = 0xFFFF
        public static let current: Int16 = Int16.min
        public static let u8: UInt8 = 0xFF
        public static let temperature: Int8 = Int8.min
    }

    public var timeOffsetMs: UInt32
    public var latitudeE7: Int32
    public var longitudeE7: Int32
    public var odometerHm: UInt32
    public var speedDkmh: UInt16
    public var headingCdeg: UInt16
    public var packVoltageDv: UInt16
    public var packCurrentDa: Int16
    public var soc: UInt8
    public var maxCellTemp: Int8
    public var minCellTemp: Int8
    public var maxAlarmLevel: UInt8
    public var status: UInt16
    public var auxBatteryCv: UInt16
    public var alarmFlags: UInt32
    public var remainingRangeKm: UInt16

    public init(
        timeOffsetMs: UInt32 = 0, latitudeE7: Int32 = NotAvailable.coordinate,
        longitudeE7: Int32 = NotAvailable.coordinate, odometerHm: UInt32 = NotAvailable.u32,
        speedDkmh: UInt16 = NotAvailable.u16, headingCdeg: UInt16 = NotAvailable.u16,
        packVoltageDv: UInt16 = NotAvailable.u16, packCurrentDa: Int16 = NotAvailable.current,
        soc: UInt8 = NotAvailable.u8, maxCellTemp: Int8 = NotAvailable.temperature,
        minCellTemp: Int8 = NotAvailable.temperature, maxAlarmLevel: UInt8 = NotAvailable.u8,
        status: UInt16 = 0, auxBatteryCv: UInt16 = NotAvailable.u16, alarmFlags: UInt32 = 0,
        remainingRangeKm: UInt16 = NotAvailable.u16
    ) {
        self.timeOffsetMs = timeOffsetMs
        self.latitudeE7 = latitudeE7
        self.longitudeE7 = longitudeE7
        self.odometerHm = odometerHm
        self.speedDkmh = speedDkmh
        self.headingCdeg = headingCdeg
        self.packVoltageDv = packVoltageDv
        self.packCurrentDa = packCurrentDa
        self.soc = soc
        self.maxCellTemp = maxCellTemp
        self.minCellTemp = minCellTemp
        self.maxAlarmLevel = maxAlarmLevel
        self.status = status
        self.auxBatteryCv = auxBatteryCv
        self.alarmFlags = alarmFlags
        self.remainingRangeKm = remainingRangeKm
    }
}

/// Bits of the record's `status` field (PROTOCOL.md 4.3).
public struct VehicleStatus: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let ignition = VehicleStatus(rawValue: 1 << 0)
    public static let charging = VehicleStatus(rawValue: 1 << 1)
    public static let dcFastCharging = VehicleStatus(rawValue: 1 << 2)
    public static let gnssFix = VehicleStatus(rawValue: 1 << 3)
    public static let pluggedIn = VehicleStatus(rawValue: 1 << 7)
    public static let doorsOpen = VehicleStatus(rawValue: 1 << 8)

    /// Gear in bits 4-6: 0 unknown, 1 P, 2 R, 3 N, 4 D, 5 B.
    public var gear: UInt8 { UInt8((rawValue >> 4) & 0x7) }

    /// A status with the given gear set in bits 4-6.
    public func withGear(_ gear: UInt8) -> VehicleStatus {
        VehicleStatus(rawValue: (rawValue & ~0x70) | (UInt16(gear & 0x7) << 4))
    }
}

/// GB/T 32960.3 general alarm flags, bit for bit (PROTOCOL.md 4.3).
public enum AlarmBit: Int, Sendable, CaseIterable {
    case temperatureDifference = 0
    case batteryHighTemperature, packOvervoltage, packUndervoltage, socLow, cellOvervoltage, cellUndervoltage
    case socHigh, socJump, storageMismatch, cellConsistency, insulation, dcdcTemperature, brakeSystem
    case dcdcStatus, motorControllerTemperature, highVoltageInterlock, motorTemperature, packOvercharge

    /// The snake_case name used in PROTOCOL.md, the CLI and JSON output.
    public var name: String {
        switch self {
        case .temperatureDifference: "temperature_difference"
        case .batteryHighTemperature: "battery_high_temperature"
        case .packOvervoltage: "pack_overvoltage"
        case .packUndervoltage: "pack_undervoltage"
        case .socLow: "soc_low"
        case .cellOvervoltage: "cell_overvoltage"
        case .cellUndervoltage: "cell_undervoltage"
        case .socHigh: "soc_high"
        case .socJump: "soc_jump"
        case .storageMismatch: "storage_mismatch"
        case .cellConsistency: "cell_consistency"
        case .insulation: "insulation"
        case .dcdcTemperature: "dcdc_temperature"
        case .brakeSystem: "brake_system"
        case .dcdcStatus: "dcdc_status"
        case .motorControllerTemperature: "motor_controller_temperature"
        case .highVoltageInterlock: "high_voltage_interlock"
        case .motorTemperature: "motor_temperature"
        case .packOvercharge: "pack_overcharge"
        }
    }

    /// The mask of this bit in `alarm_flags`.
    public var mask: UInt32 { 1 << UInt32(rawValue) }

    /// The names of the alarms set in `flags` (reserved bits are reported as `bit_N`).
    public static func names(in flags: UInt32) -> [String] {
        (0..<32).compactMap { bit in
            guard flags & (1 << UInt32(bit)) != 0 else { return nil }
            return AlarmBit(rawValue: bit)?.name ?? "bit_\(bit)"
        }
    }
}
