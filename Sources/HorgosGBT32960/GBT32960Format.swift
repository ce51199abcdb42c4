/// Fixed numbers of GB/T 32960.3 framing (Proto/GBT32960.md is Horgos's statement of them).
///
/// A frame is `start(2) command(1) response(1) VIN(17) encryption(1) length(2, big-endian)
/// data unit(length) BCC(1)`; the BCC is the XOR of every byte from the command through the last
/// data-unit byte.
public enum GBT32960Format {
    /// Bytes before the data unit: start, command, response flag, VIN, encryption flag, length.
    public static let headerSize = 24
    /// Header plus the BCC byte.
    public static let overhead = headerSize + 1
    /// The largest data unit the standard allows (65531); a listener may set a lower limit.
    public static let maxDataLength = 65_531
    /// Bytes of the data-unit time (YY MM DD hh mm ss).
    public static let timeSize = 6
    /// The standard's time base: Beijing time, GMT+8.
    public static let beijingUTCOffsetSeconds = 8 * 3600
}

/// Which edition of GB/T 32960.3 a frame's start bytes name.
///
/// Both editions share the frame envelope (header layout, BCC, commands 0x01–0x08). The 2025
/// edition changes the vehicle login body, renumbers and re-lays-out the realtime information types
/// and ends a realtime or reissue data unit with a signature; Proto/GBT32960.md section 2 lists
/// what Horgos reads of it.
public enum GBT32960Edition: UInt8, Sendable, Hashable, CaseIterable {
    /// GB/T 32960.3-2016: start bytes `##` (0x23 0x23).
    case edition2016 = 0x23
    /// GB/T 32960.3-2025: start bytes `$$` (0x24 0x24).
    case edition2025 = 0x24

    /// The edition whose start byte is `byte`.
    @inlinable @inline(__always)
    public init?(startByte byte: UInt8) {
        switch byte {
        case 0x23: self = .edition2016
        case 0x24: self = .edition2025
        default: return nil
        }
    }

    /// The two start bytes as one big-endian word (0x2323 or 0x2424).
    @inlinable
    public var startWord: UInt16 { UInt16(rawValue) << 8 | UInt16(rawValue) }
}

/// The command byte of a frame (the 2016 edition's Table 2, uplink commands Horgos serves).
public enum GBT32960Command: UInt8, Sendable, Hashable, CaseIterable {
    case vehicleLogin = 0x01
    case realtime = 0x02
    case reissue = 0x03
    case vehicleLogout = 0x04
    case platformLogin = 0x05
    case platformLogout = 0x06
    case heartbeat = 0x07
    case timeCalibration = 0x08

    /// 2025 only: a vehicle's security-chip activation request.
    case activation = 0x09
    /// 2025 only: the activation answer.
    case activationResponse = 0x0A
    /// 2025 only: a data-unit key synchronisation.
    case payloadKeySync = 0x0B

    /// The command of a command byte; nil for one Horgos does not serve (0x80–0x82 are sent by a
    /// platform to a terminal, never the other way; 0x09–0x0B exist in the 2025 edition only).
    @inlinable @inline(__always)
    public init?(wireValue: UInt8, edition: GBT32960Edition = .edition2016) {
        let last: UInt8 = edition == .edition2025 ? 0x0B : 0x08
        guard wireValue >= 0x01, wireValue <= last else { return nil }
        self.init(rawValue: wireValue)
    }

    /// The name used in logs, metrics labels and Proto/GBT32960.md.
    public var name: String {
        switch self {
        case .vehicleLogin: "vehicle_login"
        case .realtime: "realtime"
        case .reissue: "reissue"
        case .vehicleLogout: "vehicle_logout"
        case .platformLogin: "platform_login"
        case .platformLogout: "platform_logout"
        case .heartbeat: "heartbeat"
        case .timeCalibration: "time_calibration"
        case .activation: "activation"
        case .activationResponse: "activation_response"
        case .payloadKeySync: "payload_key_sync"
        }
    }

    /// Whether the data unit carries realtime information blocks (0x02, 0x03).
    public var carriesRecords: Bool { self == .realtime || self == .reissue }
}

/// The response flag byte: 0xFE on a request, one of the answers on a reply.
public enum GBT32960ResponseFlag: UInt8, Sendable, Hashable, CaseIterable {
    case success = 0x01
    case error = 0x02
    case vinDuplicate = 0x03
    case command = 0xFE

    @inlinable @inline(__always)
    public init?(wireValue: UInt8) {
        switch wireValue {
        case 0x01: self = .success
        case 0x02: self = .error
        case 0x03: self = .vinDuplicate
        case 0xFE: self = .command
        default: return nil
        }
    }
}

/// The data-unit encryption flag.
public enum GBT32960Encryption: UInt8, Sendable, Hashable, CaseIterable {
    case none = 0x01
    case rsa = 0x02
    case aes128 = 0x03
    /// 2025 only: SM2.
    case sm2 = 0x04
    /// 2025 only: SM4.
    case sm4 = 0x05
    case abnormal = 0xFE
    case invalid = 0xFF

    /// The flag of a byte in `edition` (0x04 SM2 and 0x05 SM4 exist in the 2025 edition only).
    @inlinable @inline(__always)
    public init?(wireValue: UInt8, edition: GBT32960Edition = .edition2016) {
        switch wireValue {
        case 0x01: self = .none
        case 0x02: self = .rsa
        case 0x03: self = .aes128
        case 0x04 where edition == .edition2025: self = .sm2
        case 0x05 where edition == .edition2025: self = .sm4
        case 0xFE: self = .abnormal
        case 0xFF: self = .invalid
        default: return nil
        }
    }
}

/// The information types of a realtime or reissue data unit, by their 2016 numbers (Table 9).
///
/// A 2025 report files its blocks under the same cases: its 0x06 alarms are `.alarms`, 0x07 cell
/// voltages `.cellVoltages`, 0x08 probe temperatures `.probeTemperatures` (`init(edition2025:)`);
/// the 2025 edition has no extreme-values block.
public enum GBT32960InfoType: UInt8, Sendable, Hashable, CaseIterable {
    case vehicle = 0x01
    case driveMotors = 0x02
    case fuelCell = 0x03
    case engine = 0x04
    case position = 0x05
    case extremes = 0x06
    case alarms = 0x07
    case cellVoltages = 0x08
    case probeTemperatures = 0x09
}

extension GBT32960InfoType {
    /// The block a 2025 type byte names; nil for a type Horgos does not read in that edition.
    @inlinable @inline(__always)
    public init?(edition2025 wire: UInt8) {
        switch wire {
        case 0x01: self = .vehicle
        case 0x02: self = .driveMotors
        case 0x04: self = .engine
        case 0x05: self = .position
        case 0x06: self = .alarms
        case 0x07: self = .cellVoltages
        case 0x08: self = .probeTemperatures
        default: return nil
        }
    }
}
