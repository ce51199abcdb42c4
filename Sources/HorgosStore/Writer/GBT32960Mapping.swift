import HorgosGBT32960
import HorgosWire

/// How a GB/T 32960 report fills Horgos's own record (the `telemetry` columns and the registry's
/// latest state); Proto/GBT32960.md section 7 is the table. The block views have already turned
/// markers and values outside the standard's ranges into nil; a value inside the standard's range
/// but outside the native column's (a 150 °C probe, native −40..125) is not available too. No value
/// is clamped or wrapped.
enum GBT32960Mapping {
    /// The native record of `report`; what GB/T lacks (heading, 12 V battery, range) is "not available".
    static func record(_ report: GBT32960RealtimeReport) -> TelemetryRecord {
        typealias NA = TelemetryRecord.NotAvailable
        let vehicle = report.vehicle
        let position = report.position
        let extremes = report.extremes
        var status: UInt16 = 0
        if vehicle?.vehicleState == 1 { status |= 1 << 0 }  // ignition
        let charging = vehicle?.chargingState
        if charging == 1 || charging == 2 { status |= 1 << 1 }  // charging (GB/T does not say AC or DC)
        if charging == 1 || charging == 4 { status |= 1 << 7 }  // plugged in: parked charging / finished
        // Native coordinates are WGS-84: a 2025 unit's GCJ-02 or other position stays in gbt_2025_samples.
        let wgs84 = position?.isWGS84 == true
        let latitude = wgs84 ? position?.latitudeE7 : nil, longitude = wgs84 ? position?.longitudeE7 : nil
        if latitude != nil, longitude != nil { status |= 1 << 3 }  // GNSS fix
        if let vehicle, vehicle.gearValid { status |= UInt16(nativeGear(vehicle.gear)) << 4 }
        let level = report.alarms?.maxLevel
        // The 2025 edition has no extreme-values block: the cell temperatures come from the probes.
        let probes = extremes == nil ? probeExtremes(report) : (max: nil, min: nil)
        func temperature(_ value: Int16?) -> Int8 {
            guard let value, value >= -40, value <= 125 else { return NA.temperature }
            return Int8(value)
        }
        return TelemetryRecord(
            timeOffsetMs: 0,
            latitudeE7: latitude ?? NA.coordinate,
            longitudeE7: longitude ?? NA.coordinate,
            odometerHm: vehicle?.odometerHm ?? NA.u32,
            speedDkmh: vehicle?.speedDkmh.flatMap { $0 <= 5_000 ? $0 : nil } ?? NA.u16,
            headingCdeg: NA.u16,
            packVoltageDv: vehicle?.totalVoltageDv.flatMap { $0 <= 15_000 ? $0 : nil } ?? NA.u16,
            // ±1000 A (2025: ±3000 A) always fits; a value that did not would be not available, never clamped.
            packCurrentDa: vehicle?.totalCurrentDa.flatMap { Int16(exactly: $0) } ?? NA.current,
            soc: vehicle?.soc.flatMap { $0 <= 100 ? $0 : nil } ?? NA.u8,
            maxCellTemp: temperature(extremes?.maxTemperature ?? probes.max),
            minCellTemp: temperature(extremes?.minTemperature ?? probes.min),
            maxAlarmLevel: level.flatMap { $0 <= 3 ? $0 : nil } ?? NA.u8,
            status: status,
            auxBatteryCv: NA.u16,
            alarmFlags: report.alarms?.generalFlags ?? 0,
            remainingRangeKm: NA.u16)
    }

    /// The highest and lowest probe temperature of the report's probe list (markers skipped).
    static func probeExtremes(_ report: GBT32960RealtimeReport) -> (max: Int16?, min: Int16?) {
        guard let probes = report.probeTemperatures else { return (nil, nil) }
        var high: Int16?, low: Int16?
        for subsystem in probes {
            let range = availableRange(subsystem.probeCount, subsystem.temperature)
            if let l = range.low { low = min(low ?? l, l) }
            if let h = range.high { high = max(high ?? h, h) }
        }
        return (high, low)
    }

    /// The lowest and highest of `count` values, skipping those not available (the standard's markers).
    @inline(__always)
    static func availableRange<T: Comparable>(_ count: Int, _ value: (Int) -> T?) -> (low: T?, high: T?) {
        var low: T?, high: T?
        for index in 0..<count {
            guard let v = value(index) else { continue }
            low = min(low ?? v, v)
            high = max(high ?? v, v)
        }
        return (low, high)
    }

    /// GB/T gear nibble (Annex A, Table A.1: 0 neutral, 1–12 forward gears, 13 reverse, 14 drive,
    /// 15 park) to the native gear field (0 unknown, 1 P, 2 R, 3 N, 4 D).
    static func nativeGear(_ gear: UInt8) -> UInt8 {
        switch gear & 0x0F {
        case 0: 3
        case 1...12, 14: 4
        case 13: 2
        case 15: 1
        default: 0
        }
    }
}
