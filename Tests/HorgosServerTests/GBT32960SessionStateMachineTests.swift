import HorgosConfig
import HorgosGBT32960
import HorgosServer
import HorgosWire
import Testing

/// The GB/T 32960 session rules without a channel: which frames are accepted in which state and
/// which answer each gets.
@Suite struct GBT32960SessionStateMachineTests {
    static let vin = VIN("LZFH25X46RD000171")!
    static let other = VIN("LSVAU2180N2183294")!

    static func header(_ command: GBT32960Command, vin: VIN = vin, length: Int = 8) -> GBT32960FrameHeader {
        GBT32960FrameHeader(
            edition: .edition2016, command: command, response: .command, vinField: GBT32960VINField(vin),
            encryption: .none, dataLength: length)
    }

    @Test func aVehicleLogsInThenStoresAndDataBeforeLoginIsRefused() {
        var machine = GBT32960SessionStateMachine(peer: .vehicle(Self.vin, market: "AE"), maxErrors: 3)
        #expect(machine.received(Self.header(.realtime), bodyError: nil) == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "login_required")
        #expect(machine.received(Self.header(.vehicleLogin), bodyError: nil, serial: 3) == .loginVehicle(Self.vin))
        #expect(machine.vehicleLogin(Self.vin, duplicate: false) == .answer(.success, .requestTime, close: false))
        #expect(machine.loginSerials == [Self.vin: 3])
        #expect(machine.received(Self.header(.realtime), bodyError: nil) == .store(Self.vin))
        #expect(machine.committed(stored: true) == .answer(.success, .requestTime, close: false))
        #expect(machine.received(Self.header(.heartbeat, length: 0), bodyError: nil)
            == .answer(.success, .empty, close: false))
        #expect(machine.received(Self.header(.vehicleLogout), bodyError: nil, serial: 4)
            == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "logout_serial_mismatch")
        #expect(machine.received(Self.header(.vehicleLogout), bodyError: nil, serial: 3)
            == .answer(.success, .requestTime, close: false))
        #expect(machine.state == .awaitingLogin)
    }

    @Test func anotherVINsFramesAndPlatformCommandsAreRefusedAndRepeatedErrorsClose() {
        var machine = GBT32960SessionStateMachine(peer: .vehicle(Self.vin, market: "AE"), maxErrors: 3)
        #expect(machine.received(Self.header(.vehicleLogin, vin: Self.other), bodyError: nil)
            == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "vin_not_allowed")
        #expect(machine.received(Self.header(.platformLogin), bodyError: nil) == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "role_mismatch")
        #expect(machine.received(Self.header(.realtime), bodyError: .encryptedDataUnit(0x03))
            == .answer(.error, .requestTime, close: true))
        #expect(machine.state == .closed)
    }

    @Test func timeCalibrationIsAnsweredBeforeLoginAndASuccessResetsTheErrorCount() {
        var machine = GBT32960SessionStateMachine(peer: .vehicle(Self.vin, market: "AE"), maxErrors: 2)
        _ = machine.garbage(.badStart(0))
        #expect(machine.received(Self.header(.timeCalibration, length: 0), bodyError: nil)
            == .answer(.success, .serverTime, close: false))
        #expect(machine.consecutiveErrors == 0)
        #expect(machine.garbage(.badStart(0)) == .none)
        #expect(machine.garbage(.badStart(0)) == .close)
    }

    @Test func aPlatformLogsInFirstThenCarriesAnyVINAndOutsideTheHorizonIsAnError() {
        var machine = GBT32960SessionStateMachine(peer: .platform(market: "AE"), maxErrors: 3)
        #expect(machine.received(Self.header(.realtime), bodyError: nil) == .answer(.error, .requestTime, close: false))
        #expect(machine.received(Self.header(.platformLogin, length: 41), bodyError: nil, serial: 1)
            == .answer(.success, .requestTime, close: false))
        #expect(machine.received(Self.header(.realtime, vin: Self.other), bodyError: nil) == .store(Self.other))
        #expect(machine.received(Self.header(.vehicleLogin), bodyError: nil) == .loginVehicle(Self.vin))
        #expect(machine.vehicleLogin(Self.vin, duplicate: true) == .answer(.vinDuplicate, .requestTime, close: false))
        #expect(machine.committed(stored: false) == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "outside_horizon")
    }

    @Test func aPlatformLogsOutOnlyVehiclesItLoggedInAndWithTheirSerials() {
        var machine = GBT32960SessionStateMachine(peer: .platform(market: "AE"), maxErrors: 10)
        _ = machine.received(Self.header(.platformLogin, length: 41), bodyError: nil, serial: 1)
        #expect(machine.received(Self.header(.vehicleLogin), bodyError: nil, serial: 5) == .loginVehicle(Self.vin))
        _ = machine.vehicleLogin(Self.vin, duplicate: true)
        #expect(machine.received(Self.header(.vehicleLogout), bodyError: nil, serial: 5)
            == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "login_required", "a refused login leaves nothing to log out")
        _ = machine.received(Self.header(.vehicleLogin), bodyError: nil, serial: 5)
        #expect(machine.vehicleLogin(Self.vin, duplicate: false) == .answer(.success, .requestTime, close: false))
        #expect(machine.received(Self.header(.vehicleLogout), bodyError: nil, serial: 6)
            == .answer(.error, .requestTime, close: false))
        #expect(machine.lastRefusal == "logout_serial_mismatch")
        #expect(machine.received(Self.header(.vehicleLogout), bodyError: nil, serial: 5)
            == .answer(.success, .requestTime, close: false))
        #expect(machine.received(Self.header(.platformLogout), bodyError: nil, serial: 2)
            == .answer(.error, .requestTime, close: false))
        #expect(machine.received(Self.header(.platformLogout), bodyError: nil, serial: 1)
            == .answer(.success, .requestTime, close: false))
        #expect(machine.state == .awaitingLogin)
    }

    @Test func plainTCPNeedsTheAllowListAndTimeBasesParse() {
        var machine = GBT32960SessionStateMachine(peer: .allowListed([Self.vin], market: "CN"), maxErrors: 3)
        #expect(machine.received(Self.header(.vehicleLogin, vin: Self.other), bodyError: nil)
            == .answer(.error, .requestTime, close: false))
        #expect(machine.received(Self.header(.vehicleLogin), bodyError: nil) == .loginVehicle(Self.vin))
        #expect(GBT32960Settings.utcOffset(parsing: "beijing") == 28_800)
        #expect(GBT32960Settings.utcOffset(parsing: "utc") == 0)
        #expect(GBT32960Settings.utcOffset(parsing: "-05:30") == -19_800)
        #expect(GBT32960Settings.utcOffset(parsing: "+25:00") == nil)
    }
}
