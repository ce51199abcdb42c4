/// A vehicle login (0x01) data unit: time, login sequence, ICCID, rechargeable energy storage
/// subsystem codes. Its answer echoes the same layout with the server's time.
///
/// ```
///   time(6) | login_seq WORD | ICCID(20) | subsystem_count n BYTE | code_length m BYTE | codes(n*m)
/// ```
public struct GBT32960VehicleLogin {
    public let dataUnit: UnsafeRawBufferPointer
    public let time: GBT32960Time

    /// Bytes before the subsystem codes.
    public static let fixedSize = 30

    @inlinable
    public init(dataUnit: UnsafeRawBufferPointer) throws(GBT32960Error) {
        guard dataUnit.count >= GBT32960VehicleLogin.fixedSize,
            dataUnit.count
                == GBT32960VehicleLogin.fixedSize + Int(dataUnit.byte(28)) * Int(dataUnit.byte(29))
        else { throw .lengthMismatch(infoType: 0, length: dataUnit.count) }
        self.time = try GBT32960Time(bytes: dataUnit)
        self.dataUnit = dataUnit
    }

    /// Login sequence number (1–65531; the unit adds one per login and day).
    @inlinable public var sequence: UInt16 { dataUnit.word(6) }
    /// The SIM card's ICCID, 20 bytes.
    @inlinable public var iccid: UnsafeRawBufferPointer { dataUnit.slice(8, 20) }
    /// Number of rechargeable energy storage subsystems.
    @inlinable public var subsystemCount: Int { Int(dataUnit.byte(28)) }
    /// Bytes of each subsystem code.
    @inlinable public var codeLength: Int { Int(dataUnit.byte(29)) }
    /// The `index`th subsystem code.
    @inlinable
    public func subsystemCode(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < subsystemCount)
        return dataUnit.slice(30 + index * codeLength, codeLength)
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
        self.dataUnit = dataUnit
    }

    @inlinable public var sequence: UInt16 { dataUnit.word(6) }
    /// The platform's user name, 12 bytes as sent.
    @inlinable public var username: UnsafeRawBufferPointer { dataUnit.slice(8, 12) }
    /// The encryption rule the platform announces (0x01 none, 0x02 RSA, 0x03 AES-128).
    @inlinable public var encryptionRule: UInt8 { dataUnit.byte(40) }
}
