/// A realtime (0x02) or reissue (0x03) data unit read in place: collection time and the
/// information blocks it carries (2016 edition, types 0x01–0x09; custom types 0x80–0xFE skipped).
///
/// Construction walks the blocks once, checking that each lies inside the data unit and that the
/// blocks fill it exactly; it records where each standard block starts. Block views read their
/// fields at fixed offsets when asked. Nothing is copied or allocated.
///
/// A custom block (0x80–0xFE) is skipped when a big-endian WORD length follows its type byte and
/// fits the rest of the data unit; otherwise the unit cannot be delimited and is refused
/// (`lengthMismatch`). A standard type given twice, or a reserved type, is `unknownInfoType`.
public struct GBT32960RealtimeReport {
    public let dataUnit: UnsafeRawBufferPointer
    public let time: GBT32960Time
    /// Offsets of the bodies (after the type byte) of types 0x01–0x09; 0 when absent.
    @usableFromInline var offsets: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)
    /// Custom blocks skipped.
    public let customBlocks: Int

    @inlinable
    public init(dataUnit p: UnsafeRawBufferPointer) throws(GBT32960Error) {
        let count = p.count
        guard count >= GBT32960Format.timeSize else { throw .lengthMismatch(infoType: 0, length: count) }
        time = try GBT32960Time(bytes: p)
        var found: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        var custom = 0
        var o = GBT32960Format.timeSize
        while o < count {
            let type = p.byte(o)
            o &+= 1
            let start = o
            switch type {
            case 0x01: try Self.need(20, at: o, in: count, type: type, start: start); o &+= 20
            case 0x02:
                try Self.need(1, at: o, in: count, type: type, start: start)
                let motors = Int(p.byte(o))
                try Self.need(1 &+ 12 &* motors, at: o, in: count, type: type, start: start)
                o &+= 1 &+ 12 &* motors
            case 0x03:
                try Self.need(8, at: o, in: count, type: type, start: start)
                let probes = Int(p.word(o &+ 6))
                try Self.need(18 &+ probes, at: o, in: count, type: type, start: start)
                o &+= 18 &+ probes
            case 0x04: try Self.need(5, at: o, in: count, type: type, start: start); o &+= 5
            case 0x05: try Self.need(9, at: o, in: count, type: type, start: start); o &+= 9
            case 0x06: try Self.need(14, at: o, in: count, type: type, start: start); o &+= 14
            case 0x07:
                try Self.need(6, at: o, in: count, type: type, start: start)
                o &+= 5
                for _ in 0..<4 {
                    try Self.need(1, at: o, in: count, type: type, start: start)
                    let codes = Int(p.byte(o))
                    try Self.need(1 &+ 4 &* codes, at: o, in: count, type: type, start: start)
                    o &+= 1 &+ 4 &* codes
                }
            case 0x08:
                try Self.need(1, at: o, in: count, type: type, start: start)
                let subsystems = Int(p.byte(o))
                o &+= 1
                for _ in 0..<subsystems {
                    try Self.need(10, at: o, in: count, type: type, start: start)
                    let cells = Int(p.byte(o &+ 9))
                    try Self.need(10 &+ 2 &* cells, at: o, in: count, type: type, start: start)
                    o &+= 10 &+ 2 &* cells
                }
            case 0x09:
                try Self.need(1, at: o, in: count, type: type, start: start)
                let subsystems = Int(p.byte(o))
                o &+= 1
                for _ in 0..<subsystems {
                    try Self.need(3, at: o, in: count, type: type, start: start)
                    let probes = Int(p.word(o &+ 1))
                    try Self.need(3 &+ probes, at: o, in: count, type: type, start: start)
                    o &+= 3 &+ probes
                }
            case 0x80...0xFE:
                try Self.need(2, at: o, in: count, type: type, start: start)
                let length = Int(p.word(o))
                try Self.need(2 &+ length, at: o, in: count, type: type, start: start)
                o &+= 2 &+ length
                custom &+= 1
                continue
            default: throw .unknownInfoType(type)
            }
            let slot = Int(type) &- 1
            let fresh = withUnsafeMutableBytes(of: &found) { raw in
                let slots = raw.bindMemory(to: Int32.self)
                if slots[slot] != 0 { return false }
                slots[slot] = Int32(truncatingIfNeeded: start)
                return true
            }
            if !fresh { throw .unknownInfoType(type) }
        }
        offsets = found
        customBlocks = custom
        dataUnit = p
    }

    /// Throws unless `n` more bytes follow offset `o` in a unit of `count` bytes.
    @inlinable @inline(__always)
    static func need(_ n: Int, at o: Int, in count: Int, type: UInt8, start: Int) throws(GBT32960Error) {
        if n > count &- o { throw .lengthMismatch(infoType: type, length: count &- start) }
    }

    @inlinable
    func offset(_ type: GBT32960InfoType) -> Int? {
        let value = withUnsafeBytes(of: offsets) { $0.load(fromByteOffset: (Int(type.rawValue) - 1) * 4, as: Int32.self) }
        return value == 0 ? nil : Int(value)
    }

    @inlinable
    func tail(_ type: GBT32960InfoType) -> UnsafeRawBufferPointer? {
        guard let start = offset(type) else { return nil }
        return dataUnit.slice(start, dataUnit.count - start)
    }

    /// Whether the report carries a block of `type`.
    @inlinable public func has(_ type: GBT32960InfoType) -> Bool { offset(type) != nil }

    /// 0x01 whole vehicle data.
    @inlinable public var vehicle: GBT32960VehicleData? { tail(.vehicle).map(GBT32960VehicleData.init) }
    /// 0x02 drive motors.
    @inlinable public var driveMotors: GBT32960DriveMotors? { tail(.driveMotors).map(GBT32960DriveMotors.init) }
    /// 0x03 fuel cell.
    @inlinable public var fuelCell: GBT32960FuelCell? { tail(.fuelCell).map(GBT32960FuelCell.init) }
    /// 0x04 engine.
    @inlinable public var engine: GBT32960Engine? { tail(.engine).map(GBT32960Engine.init) }
    /// 0x05 vehicle position.
    @inlinable public var position: GBT32960Position? { tail(.position).map(GBT32960Position.init) }
    /// 0x06 extreme values.
    @inlinable public var extremes: GBT32960Extremes? { tail(.extremes).map(GBT32960Extremes.init) }
    /// 0x07 alarms and fault-code lists.
    @inlinable public var alarms: GBT32960Alarms? { tail(.alarms).map(GBT32960Alarms.init) }
    /// 0x08 rechargeable energy storage cell voltages.
    @inlinable public var cellVoltages: GBT32960CellVoltages? { tail(.cellVoltages).map(GBT32960CellVoltages.init) }
    /// 0x09 rechargeable energy storage probe temperatures.
    @inlinable
    public var probeTemperatures: GBT32960ProbeTemperatures? {
        tail(.probeTemperatures).map(GBT32960ProbeTemperatures.init)
    }
}
