/// A vehicle login (0x01) data unit: time, login sequence, ICCID, rechargeable energy storage
/// subsystem codes. Its answer echoes the same layout with the server's time.
///
/// ```
///   2016: time(6) | login_seq WORD | ICCID(20) | subsystem_count n BYTE | code_length m BYTE | codes(n*m)
///   2025: time(6) | login_seq WORD | ICCID(20) | BMS count n BYTE | packs per BMS (n BYTEs, k1..kn)
///         | (k1 + … + kn) pack codes of 24 bytes, BMS by BMS
/// ```
/// The 2025 layout is the one of rtm_con (Proto/GBT32960.md section 2). Codes are offered as one
/// flat list in both editions (`subsystemCount` codes of `codeLength` bytes); a 2025 login adds
/// `bmsCount` and `packCount(bms:)`.
public struct GBT32960VehicleLogin {
    public let dataUnit: UnsafeRawBufferPointer
    public let time: GBT32960Time
    public let edition: GBT32960Edition
    /// Number of codes and offset of the first one.
    public let subsystemCount: Int
    @usableFromInline let codesOffset: Int

    /// Bytes before the subsystem codes (2016), before the per-BMS pack counts (2025).
    public static let fixedSize = 30
    /// Bytes of a 2025 pack code.
    public static let packCodeSize2025 = 24

    @inlinable
    public init(dataUnit: UnsafeRawBufferPointer, edition: GBT32960Edition = .edition2016) throws(GBT32960Error) {
        let count = dataUnit.count
        switch edition {
        case .edition2016:
            guard count >= GBT32960VehicleLogin.fixedSize,
                count == GBT32960VehicleLogin.fixedSize + Int(dataUnit.byte(28)) * Int(dataUnit.byte(29))
            else { throw .lengthMismatch(infoType: 0, length: count) }
            subsystemCount = Int(dataUnit.byte(28))
            codesOffset = GBT32960VehicleLogin.fixedSize
        case .edition2025:
            guard count >= 29 else { throw .lengthMismatch(infoType: 0, length: count) }
            let bms = Int(dataUnit.byte(28))
            guard count >= 29 + bms else { throw .lengthMismatch(infoType: 0, length: count) }
            var packs = 0
            for index in 0..<bms { packs += Int(dataUnit.byte(29 + index)) }
            guard count == 29 + bms + GBT32960VehicleLogin.packCodeSize2025 * packs else {
                throw .lengthMismatch(infoType: 0, length: count)
            }
            subsystemCount = packs
            codesOffset = 29 + bms
        }
        self.time = try GBT32960Time(bytes: dataUnit)
        try GBT32960Serial.check(dataUnit.word(6))
        self.edition = edition
        self.dataUnit = dataUnit
    }

    /// Login sequence number (1–65531; the unit adds one per login and day).
    @inlinable public var sequence: UInt16 { dataUnit.word(6) }
    /// The SIM card's ICCID, 20 bytes.
    @inlinable public var iccid: UnsafeRawBufferPointer { dataUnit.slice(8, 20) }
    /// Bytes of each subsystem code (24 in the 2025 edition).
    @inlinable
    public var codeLength: Int {
        edition == .edition2025 ? GBT32960VehicleLogin.packCodeSize2025 : Int(dataUnit.byte(29))
    }
    /// The `index`th subsystem (pack) code, over all BMSs in order.
    @inlinable
    public func subsystemCode(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < subsystemCount)
        return dataUnit.slice(codesOffset + index * codeLength, codeLength)
    }
    /// 2025: the number of battery management systems (2016: the subsystem count).
    @inlinable public var bmsCount: Int { Int(dataUnit.byte(28)) }
    /// 2025: the number of pack codes of BMS `bms` (0-based); 2016: 1 per subsystem.
    @inlinable
    public func packCount(bms: Int) -> Int {
        precondition(bms >= 0 && bms < bmsCount)
        return edition == .edition2025 ? Int(dataUnit.byte(29 + bms)) : 1
    }
}

/// The login and logout serial numbers of GB/T 32960.3-2016 Tables 6 and 20–22: "从1开始循环累加，
/// 最大值为65531，循环周期为天" (from 1, one more per login, wrapping after 65531, a cycle a day); a
/// logout carries the serial of the login it ends.
public enum GBT32960Serial {
    /// The valid serial numbers.
    public static let range: ClosedRange<UInt16> = 1...65_531

    /// Throws `badSerial` for a serial outside `range`.
    @inlinable
    public static func check(_ serial: UInt16) throws(GBT32960Error) {
        guard range.contains(serial) else { throw .badSerial(serial) }
    }
}

/// A vehicle logout (0x04) or platform logout (0x06) data unit: time and sequence number.
public struct GBT32960Logout: Sendable, Hashable {
    public let time: GBT32960Time
    public let sequence: UInt16

    /// The data unit's size.
    public static let size = 8

    @inlinable
    public init(dataUnit: UnsafeRawBufferPointer, command: UInt8) throws(GBT32960Error) {
        guard dataUnit.count == GBT32960Logout.size else { throw .lengthMismatch(infoType: 0, length: dataUnit.count) }
        self.time = try GBT32960Time(bytes: dataUnit)
        self.sequence = dataUnit.word(6)
        try GBT32960Serial.check(sequence)
    }
}

/// A platform login (0x05) data unit: a forwarding platform (gateway) signs in.
///
/// ```
///   time(6) | login_seq WORD | username(12) | password(20) | encryption_rule BYTE
/// ```
/// Horgos authenticates platforms by their client certificate; username and password are logged,
/// not checked (Proto/GBT32960.md 5.2).
public struct GBT32960PlatformLogin {
    public let dataUnit: UnsafeRawBufferPointer
    public let time: GBT32960Time

    /// The data unit's size.
    public static let size = 41

    @inlinable
    public init(dataUnit: UnsafeRawBufferPointer) throws(GBT32960Error) {
        guard dataUnit.count == GBT32960PlatformLogin.size else {
            throw .lengthMismatch(infoType: 0, length: dataUnit.count)
        }
        self.time = try GBT32960Time(bytes: dataUnit)
        try GBT32960Serial.check(dataUnit.word(6))
        self.dataUnit = dataUnit
    }

    /// Login sequence number (1–65531, as a vehicle's).
    @inlinable public var sequence: UInt16 { dataUnit.word(6) }
    /// The platform's user name, 12 bytes as sent.
    @inlinable public var username: UnsafeRawBufferPointer { dataUnit.slice(8, 12) }
    /// The encryption rule the platform announces (0x01 none, 0x02 RSA, 0x03 AES-128).
    @inlinable public var encryptionRule: UInt8 { dataUnit.byte(40) }
}
