import HorgosGBT32960
import HorgosWire
import Testing

@testable import HorgosServer

/// The answers of GB/T 32960.3 as the standard writes them, for every command of both editions,
/// through the daemon's frame decoder and session handler. Every request and every expected answer
/// is written here field by field from the standard's tables (2016: Table 2 envelope, Tables 6 and
/// 20–22; 2025: rtm_con's layouts, Proto/GBT32960.md section 2), never by Horgos's encoder.
///
/// Section 6.3.2's rule for every answer: change the response flag, keep the request's time, delete
/// the rest of the data unit, recompute the check code.
@Suite struct GBT32960AnswerConformanceTests {
    static let vin = Array("LSVAU2180N2183294".utf8)
    static let platformCode = Array("GW-SHENZHEN-01".utf8) + [0, 0, 0]
    /// 2024-05-14 18:18:19 Beijing time, the request's collection time.
    static let time: [UInt8] = [24, 5, 14, 18, 18, 19]
    /// The server's clock: 2024-05-14 18:18:20 Beijing time.
    static let serverTime: [UInt8] = [24, 5, 14, 18, 18, 20]
    static let iccid = Array("89860012345678901234".utf8)

    static func word(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// Table 2: start(2) command response VIN(17) encryption length(WORD) data BCC (XOR of command
    /// through data).
    static func frame(_ start: UInt8, _ command: UInt8, flag: UInt8 = 0xFE, vin: [UInt8] = vin, _ unit: [UInt8])
        -> [UInt8]
    {
        var out: [UInt8] = [start, start, command, flag] + vin + [0x01] + word(unit.count) + unit
        out.append(out[2...].reduce(0, ^))
        return out
    }

    /// Table 6 (2016): time, login serial, ICCID(20), n subsystems, code length m, n × m code bytes.
    /// 2025 (rtm_con): time, serial, ICCID, BMS count n, n pack counts, the pack codes of 24 bytes.
    static func login(_ start: UInt8, serial: Int) -> [UInt8] {
        let head = time + word(serial) + iccid
        return start == 0x23
            ? head + [1, 4] + Array("PACK".utf8)
            : head + [1, 1] + Array("PACK0000000000000000000A".utf8)
    }

    /// Tables 20 and 22: time, logout serial.
    static func logout(serial: Int) -> [UInt8] { time + word(serial) }

    /// Table 21: time, serial, user name(12), password(20), encryption rule.
    static func platformLogin(serial: Int) -> [UInt8] {
        time + word(serial) + Array("gateway01".utf8) + [0, 0, 0] + Array("s3cret-password".utf8)
            + [UInt8](repeating: 0, count: 5) + [0x01]
    }

    /// Table 7 with one Table 9 block (2016, 20 bytes) or its 2025 form (18 bytes, then the
    /// signature: 0xFF, RSA, empty r and s).
    static func realtime(_ start: UInt8) -> [UInt8] {
        let vehicle: [UInt8] =
            [0x01, 1, 3, 1] + word(468) + [0, 1, 0x19, 0xB8] + word(6_397)
            + word(start == 0x23 ? 7_517 : 27_517) + [26, 1, 0x23] + word(4_444)
        return start == 0x23 ? time + vehicle + [0, 6] : time + vehicle + [0xFF, 0x02, 0, 0, 0, 0]
    }

    static func vehicle() throws -> GBT32960Connection {
        try GBT32960Connection(
            peer: .vehicle(VIN("LSVAU2180N2183294")!, market: "CN"), serverTimeMs: try beijingMs(serverTime))
    }

    static func platform() throws -> GBT32960Connection {
        try GBT32960Connection(peer: .platform(market: "CN"), serverTimeMs: try beijingMs(serverTime))
    }

    static let editions: [UInt8] = [0x23, 0x24]

    // MARK: section 6.3.2: what each command's answer carries

    @Test(arguments: editions)
    func aVehicleLoginIsAnsweredWithItsTimeAndNothingElse_6_3_2_Table6(start: UInt8) throws {
        let unit = try Self.vehicle()
        let answer = try unit.answer(Self.frame(start, 0x01, Self.login(start, serial: 1)))
        #expect(answer == Self.frame(start, 0x01, flag: 0x01, Self.time))
    }

    @Test(arguments: editions)
    func realtimeAndReissueAreAnsweredWithTheirCollectionTime_6_3_2_Table7(start: UInt8) throws {
        let unit = try Self.vehicle()
        _ = try unit.answer(Self.frame(start, 0x01, Self.login(start, serial: 1)))
        for command: UInt8 in [0x02, 0x03] {
            let answer = try unit.answer(Self.frame(start, command, Self.realtime(start)))
            #expect(answer == Self.frame(start, command, flag: 0x01, Self.time), "command \(command)")
        }
    }

    @Test(arguments: editions)
    func aVehicleLogoutIsAnsweredWithItsTime_6_3_2_Table20(start: UInt8) throws {
        let unit = try Self.vehicle()
        _ = try unit.answer(Self.frame(start, 0x01, Self.login(start, serial: 9)))
        let answer = try unit.answer(Self.frame(start, 0x04, Self.logout(serial: 9)))
        #expect(answer == Self.frame(start, 0x04, flag: 0x01, Self.time))
    }

    @Test(arguments: editions)
    func aPlatformLoginIsAnsweredWithItsTimeNeverItsPassword_6_3_2_Table21(start: UInt8) throws {
        let platform = try Self.platform()
        let answer = try platform.answer(Self.frame(start, 0x05, vin: Self.platformCode, Self.platformLogin(serial: 3)))
        #expect(answer == Self.frame(start, 0x05, flag: 0x01, vin: Self.platformCode, Self.time))
    }

    @Test(arguments: editions)
    func aPlatformLogoutIsAnsweredWithItsTime_6_3_2_Table22(start: UInt8) throws {
        let platform = try Self.platform()
        _ = try platform.answer(Self.frame(start, 0x05, vin: Self.platformCode, Self.platformLogin(serial: 3)))
        let answer = try platform.answer(Self.frame(start, 0x06, vin: Self.platformCode, Self.logout(serial: 3)))
        #expect(answer == Self.frame(start, 0x06, flag: 0x01, vin: Self.platformCode, Self.time))
    }

    @Test(arguments: editions)
    func aHeartbeatHasNoTimeSoItsAnswerIsEmpty_6_3_2_Table3(start: UInt8) throws {
        let unit = try Self.vehicle()
        _ = try unit.answer(Self.frame(start, 0x01, Self.login(start, serial: 1)))
        #expect(try unit.answer(Self.frame(start, 0x07, [])) == Self.frame(start, 0x07, flag: 0x01, []))
        let platform = try Self.platform()
        _ = try platform.answer(Self.frame(start, 0x05, vin: Self.platformCode, Self.platformLogin(serial: 3)))
        let answer = try platform.answer(Self.frame(start, 0x07, vin: Self.platformCode, []))
        #expect(answer == Self.frame(start, 0x07, flag: 0x01, vin: Self.platformCode, []))
    }

    @Test(arguments: editions)
    func aTimeCalibrationIsAnsweredWithThePlatformsTime_Table3(start: UInt8) throws {
        let unit = try Self.vehicle()
        #expect(try unit.answer(Self.frame(start, 0x08, [])) == Self.frame(start, 0x08, flag: 0x01, Self.serverTime))
    }

    @Test(arguments: editions)
    func anErrorAnswerKeepsTheRequestsTimeToo_6_3_2(start: UInt8) throws {
        let unit = try Self.vehicle()
        // Realtime before the login, and a heartbeat before it (no time: empty).
        #expect(
            try unit.answer(Self.frame(start, 0x02, Self.realtime(start)))
                == Self.frame(start, 0x02, flag: 0x02, Self.time))
        #expect(try unit.answer(Self.frame(start, 0x07, [])) == Self.frame(start, 0x07, flag: 0x02, []))
    }

    // MARK: serial numbers (Tables 6, 20, 21, 22)

    /// Table 6: the login serial counts from 1 and wraps after 65531.
    @Test(arguments: editions)
    func aLoginSerialOutsideOneTo65531IsRefused_Table6(start: UInt8) throws {
        for (serial, flag) in [(0, 0x02), (65_532, 0x02), (65_535, 0x02), (1, 0x01), (65_531, 0x01)] as [(Int, UInt8)] {
            let unit = try Self.vehicle()
            let answer = try unit.answer(Self.frame(start, 0x01, Self.login(start, serial: serial)))
            #expect(answer == Self.frame(start, 0x01, flag: flag, Self.time), "serial \(serial)")
        }
    }

    /// Table 20: the logout serial is the serial of the login it ends. A different one is an error and
    /// the vehicle stays logged in.
    @Test(arguments: editions)
    func aLogoutMustRepeatItsLoginsSerial_Table20(start: UInt8) throws {
        let unit = try Self.vehicle()
        _ = try unit.answer(Self.frame(start, 0x01, Self.login(start, serial: 41)))
        #expect(
            try unit.answer(Self.frame(start, 0x04, Self.logout(serial: 42)))
                == Self.frame(start, 0x04, flag: 0x02, Self.time))
        #expect(
            try unit.answer(Self.frame(start, 0x07, [])) == Self.frame(start, 0x07, flag: 0x01, []), "still logged in")
        #expect(
            try unit.answer(Self.frame(start, 0x04, Self.logout(serial: 0)))
                == Self.frame(start, 0x04, flag: 0x02, Self.time))
        #expect(
            try unit.answer(Self.frame(start, 0x04, Self.logout(serial: 41)))
                == Self.frame(start, 0x04, flag: 0x01, Self.time))
        #expect(try unit.answer(Self.frame(start, 0x07, [])) == Self.frame(start, 0x07, flag: 0x02, []), "logged out")
    }

    /// Tables 21 and 22: the same rules for a platform's own login and logout, and for the vehicle
    /// logins it forwards.
    @Test(arguments: editions)
    func aPlatformsLogoutsMustRepeatTheirLoginsSerials_Tables21And22(start: UInt8) throws {
        let platform = try Self.platform()
        let code = Self.platformCode
        #expect(
            try platform.answer(Self.frame(start, 0x05, vin: code, Self.platformLogin(serial: 0)))
                == Self.frame(start, 0x05, flag: 0x02, vin: code, Self.time))
        _ = try platform.answer(Self.frame(start, 0x05, vin: code, Self.platformLogin(serial: 7)))
        _ = try platform.answer(Self.frame(start, 0x01, Self.login(start, serial: 5)))
        #expect(
            try platform.answer(Self.frame(start, 0x04, Self.logout(serial: 6)))
                == Self.frame(start, 0x04, flag: 0x02, Self.time))
        #expect(
            try platform.answer(Self.frame(start, 0x04, Self.logout(serial: 5)))
                == Self.frame(start, 0x04, flag: 0x01, Self.time))
        #expect(
            try platform.answer(Self.frame(start, 0x06, vin: code, Self.logout(serial: 8)))
                == Self.frame(start, 0x06, flag: 0x02, vin: code, Self.time))
        #expect(
            try platform.answer(Self.frame(start, 0x06, vin: code, Self.logout(serial: 7)))
                == Self.frame(start, 0x06, flag: 0x01, vin: code, Self.time))
    }
}
