/// A realtime (0x02) or reissue (0x03) data unit read in place: collection time and the
/// information blocks it carries (2016 types 0x01–0x09, 2025 types 0x01, 0x02, 0x04–0x08 with that
/// edition's layouts; custom types 0x80–0xFE skipped) and, in the 2025 edition, the signature.
///
/// Construction walks the blocks once, checking that each lies inside the data unit and that the
/// blocks (and the 2025 signature) fill it exactly; it records where each standard block starts.
/// Block views read their fields at fixed offsets when asked. Nothing is copied or allocated.
///
/// A custom block (0x80–0xFE) is skipped when a big-endian WORD length follows its type byte and
/// fits the rest of the data unit; otherwise the unit cannot be delimited and is refused
/// (`lengthMismatch`). A standard type given twice, or a reserved type, is `unknownInfoType`; a
/// 2025 type whose layout Horgos does not read (0x03, 0x30–0x32) is `unsupportedEditionContent`.
///
/// A 2025 data unit ends with `0xFF` and the signature (`GBT32960Signature`); its absence is
/// `signatureMissing`, a signature that does not fill the rest exactly is `badSignature`. The
/// signature is read and bounds-checked, never verified (Proto/GBT32960.md section 2).
public struct GBT32960RealtimeReport {
    public let dataUnit: UnsafeRawBufferPointer
    public let time: GBT32960Time
    public let edition: GBT32960Edition
    /// Offsets of the bodies (after the type byte) of types 0x01–0x09 (by their 2016 numbers,
    /// `GBT32960InfoType`); 0 when absent.
    @usableFromInline var offsets: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)
    /// Offset of the 2025 signature's algorithm byte (after the 0xFF starter); 0 when none.
    @usableFromInline let signatureOffset: Int32
    /// Custom blocks skipped.
    public let customBlocks: Int

    @inlinable
    public init(dataUnit p: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) throws(GBT32960Error) {
        let count = p.count
        guard count >= GBT32960Format.timeSize else { throw .lengthMismatch(infoType: 0, length: count) }
        time = try GBT32960Time(bytes: p)
        var found: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        var custom = 0
        var signature = 0
        var o = GBT32960Format.timeSize
        let is2025 = edition == .edition2025
        while o < count || is2025 {
            guard o < count else { throw .signatureMissing }
            let type = p.byte(o)
            o &+= 1
            let start = o
            if is2025 {
                switch type {
                case 0xFF:
                    try GBT32960Signature.check(p, at: o)
                    signature = o
                    o = count
                case 0x03, 0x30...0x32: throw .unsupportedEditionContent
                case 0x80...0xFE:
                    o = try Self.skipCustom(p, at: o, type: type)
                    custom &+= 1
                    continue
                default:
                    guard let logical = GBT32960InfoType(edition2025: type) else { throw .unknownInfoType(type) }
                    o = try Self.skip2025(logical, p, at: o, type: type)
                    try Self.record(Int(logical.rawValue) &- 1, start: start, type: type, in: &found)
                    continue
                }
                break
            }
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
            case 0x07: o = try Self.skipFaultLists(p, at: o, type: type)
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
            case 0x09: o = try Self.skipProbes(p, at: o, type: type)
            case 0x80...0xFE:
                o = try Self.skipCustom(p, at: o, type: type)
                custom &+= 1
                continue
            default: throw .unknownInfoType(type)
            }
            try Self.record(Int(type) &- 1, start: start, type: type, in: &found)
        }
        offsets = found
        signatureOffset = Int32(truncatingIfNeeded: signature)
        customBlocks = custom
        dataUnit = p
        self.edition = edition
    }

    /// Notes that the block of `slot` starts at `start`; a second block of the slot is
    /// `unknownInfoType`.
    @inlinable @inline(__always)
    static func record(
        _ slot: Int, start: Int, type: UInt8,
        in found: inout (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)
    ) throws(GBT32960Error) {
        let fresh = withUnsafeMutableBytes(of: &found) { raw in
            let slots = raw.bindMemory(to: Int32.self)
            if slots[slot] != 0 { return false }
            slots[slot] = Int32(truncatingIfNeeded: start)
            return true
        }
        if !fresh { throw .unknownInfoType(type) }
    }

    /// The end of a custom block whose WORD length is at `o`.
    @inlinable @inline(__always)
    static func skipCustom(_ p: UnsafeRawBufferPointer, at o: Int, type: UInt8) throws(GBT32960Error) -> Int {
        try need(2, at: o, in: p.count, type: type, start: o)
        let length = Int(p.word(o))
        try need(2 &+ length, at: o, in: p.count, type: type, start: o)
        return o &+ 2 &+ length
    }

    /// The end of an alarm block at `o`: level, flags, four fault-code lists (and, in 2025, the
    /// list of levelled alarms when `levelled`).
    @inlinable @inline(__always)
    static func skipFaultLists(
        _ p: UnsafeRawBufferPointer, at start: Int, type: UInt8, levelled: Bool = false
    ) throws(GBT32960Error) -> Int {
        let count = p.count
        try need(6, at: start, in: count, type: type, start: start)
        var o = start &+ 5
        for _ in 0..<4 {
            try need(1, at: o, in: count, type: type, start: start)
            let codes = Int(p.byte(o))
            try need(1 &+ 4 &* codes, at: o, in: count, type: type, start: start)
            o &+= 1 &+ 4 &* codes
        }
        if levelled {
            try need(1, at: o, in: count, type: type, start: start)
            let pairs = Int(p.byte(o))
            try need(1 &+ 2 &* pairs, at: o, in: count, type: type, start: start)
            o &+= 1 &+ 2 &* pairs
        }
        return o
    }

    /// The end of a probe-temperature block at `o` (the same layout in both editions).
    @inlinable @inline(__always)
    static func skipProbes(_ p: UnsafeRawBufferPointer, at start: Int, type: UInt8) throws(GBT32960Error) -> Int {
        let count = p.count
        try need(1, at: start, in: count, type: type, start: start)
        let subsystems = Int(p.byte(start))
        var o = start &+ 1
        for _ in 0..<subsystems {
            try need(3, at: o, in: count, type: type, start: start)
            let probes = Int(p.word(o &+ 1))
            try need(3 &+ probes, at: o, in: count, type: type, start: start)
            o &+= 3 &+ probes
        }
        return o
    }

    /// The end of the 2025 block `logical` (wire type `type`) whose body starts at `start`.
    @inlinable
    static func skip2025(
        _ logical: GBT32960InfoType, _ p: UnsafeRawBufferPointer, at start: Int, type: UInt8
    ) throws(GBT32960Error) -> Int {
        let count = p.count
        var o = start
        switch logical {
        case .vehicle: try need(18, at: o, in: count, type: type, start: start); o &+= 18
        case .driveMotors:
            try need(1, at: o, in: count, type: type, start: start)
            let motors = Int(p.byte(o))
            try need(1 &+ 10 &* motors, at: o, in: count, type: type, start: start)
            o &+= 1 &+ 10 &* motors
        case .engine: try need(2, at: o, in: count, type: type, start: start); o &+= 2
        case .position: try need(10, at: o, in: count, type: type, start: start); o &+= 10
        case .alarms: o = try skipFaultLists(p, at: o, type: type, levelled: true)
        case .cellVoltages:
            try need(1, at: o, in: count, type: type, start: start)
            let subsystems = Int(p.byte(o))
            o &+= 1
            for _ in 0..<subsystems {
                try need(7, at: o, in: count, type: type, start: start)
                let cells = Int(p.word(o &+ 5))
                try need(7 &+ 2 &* cells, at: o, in: count, type: type, start: start)
                o &+= 7 &+ 2 &* cells
            }
        case .probeTemperatures: o = try skipProbes(p, at: o, type: type)
        case .fuelCell, .extremes: throw .unknownInfoType(type)  // not 2025 types (init(edition2025:))
        }
        return o
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
    @inlinable public var vehicle: GBT32960VehicleData? { tail(.vehicle).map { .init($0, edition: edition) } }
    /// 0x02 drive motors.
    @inlinable
    public var driveMotors: GBT32960DriveMotors? { tail(.driveMotors).map { .init($0, edition: edition) } }
    /// 0x03 fuel cell (2016 only).
    @inlinable public var fuelCell: GBT32960FuelCell? { tail(.fuelCell).map(GBT32960FuelCell.init) }
    /// 0x04 engine.
    @inlinable public var engine: GBT32960Engine? { tail(.engine).map { .init($0, edition: edition) } }
    /// 0x05 vehicle position.
    @inlinable public var position: GBT32960Position? { tail(.position).map { .init($0, edition: edition) } }
    /// 0x06 extreme values (2016 only).
    @inlinable public var extremes: GBT32960Extremes? { tail(.extremes).map(GBT32960Extremes.init) }
    /// 0x07 alarms and fault-code lists (2025: type 0x06).
    @inlinable public var alarms: GBT32960Alarms? { tail(.alarms).map { .init($0, edition: edition) } }
    /// 0x08 rechargeable energy storage cell voltages (2025: type 0x07).
    @inlinable
    public var cellVoltages: GBT32960CellVoltages? { tail(.cellVoltages).map { .init($0, edition: edition) } }
    /// 0x09 rechargeable energy storage probe temperatures (2025: type 0x08).
    @inlinable
    public var probeTemperatures: GBT32960ProbeTemperatures? {
        tail(.probeTemperatures).map(GBT32960ProbeTemperatures.init)
    }
    /// The 2025 signature (nil in 2016).
    @inlinable
    public var signature: GBT32960Signature? {
        let start = Int(signatureOffset)
        return start == 0 ? nil : GBT32960Signature(dataUnit.slice(start, dataUnit.count - start))
    }
}

/// The signature that ends a 2025 realtime or reissue data unit, after its `0xFF` starter:
///
/// ```
///   algorithm BYTE (1 SM2, 2 RSA, 3 ECC) | r length WORD | r | s length WORD | s
/// ```
/// (the layout of rtm_con, Proto/GBT32960.md section 2). Horgos reads and bounds-checks it and keeps
/// the algorithm; it does **not** verify it: no key distribution is defined for Horgos's units.
public struct GBT32960Signature {
    /// The signature's bytes from the algorithm byte to the end of the data unit.
    public let bytes: UnsafeRawBufferPointer
    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// 1 SM2, 2 RSA, 3 ECC.
    @inlinable public var algorithm: UInt8 { bytes.byte(0) }
    /// The r value as sent.
    @inlinable public var r: UnsafeRawBufferPointer { bytes.slice(3, Int(bytes.word(1))) }
    /// The s value as sent (empty for RSA in the public samples).
    @inlinable
    public var s: UnsafeRawBufferPointer {
        let rLength = Int(bytes.word(1))
        return bytes.slice(5 &+ rLength, Int(bytes.word(3 &+ rLength)))
    }

    /// Throws unless a signature with a known algorithm starts at `o` and fills `p` to its end:
    /// `badSignature` when it is cut short or has an unknown algorithm, `lengthMismatch` (type 0xFF)
    /// when bytes follow it.
    @inlinable
    static func check(_ p: UnsafeRawBufferPointer, at o: Int) throws(GBT32960Error) {
        let left = p.count &- o
        guard left >= 3 else { throw .badSignature }
        guard (1...3).contains(p.byte(o)) else { throw .badSignature }
        let rLength = Int(p.word(o &+ 1))
        guard left >= 5 &+ rLength else { throw .badSignature }
        let sLength = Int(p.word(o &+ 3 &+ rLength))
        let size = 5 &+ rLength &+ sLength
        if size > left { throw .badSignature }
        if size < left { throw .lengthMismatch(infoType: 0xFF, length: left) }
    }
}
