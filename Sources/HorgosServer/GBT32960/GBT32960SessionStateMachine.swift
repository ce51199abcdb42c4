import HorgosGBT32960
import HorgosWire

/// Who is on a GB/T 32960 connection, from its certificate (or the plain-TCP allow-list).
public enum GBT32960Peer: Sendable, Hashable {
    /// A vehicle certificate: only frames of this VIN.
    case vehicle(VIN, market: String)
    /// A gateway certificate: a forwarding platform (0x05 login), any VIN of its market.
    case platform(market: String)
    /// A plain-TCP connection (`gbt32960.tls: off`): the allow-listed VINs only.
    case allowListed(Set<VIN>, market: String)

    /// The region the data goes to.
    public var market: String {
        switch self {
        case .vehicle(_, let market), .platform(let market), .allowListed(_, let market): market
        }
    }
}

/// The rules of one GB/T 32960 connection as a pure state machine: which frames are accepted in
/// which state, which answer each gets, when the connection is closed. The channel handler
/// performs the actions; this type has its own tests.
///
/// ```
///   awaitingLogin --0x01 (vehicle) / 0x05 (platform)--> loggedIn --0x04 / 0x06--> awaitingLogin
///   any state: 0x08 time calibration answered; `maxErrors` error answers in a row -> close
/// ```
///
/// Answers follow GB/T 32960.3-2016 section 6.3.2 (`GBT32960AnswerData`): the request's time, the
/// rest of its data unit dropped; an empty data unit for a heartbeat; the server's time for a time
/// calibration. A logout must carry the serial of the login it ends (Tables 20 and 22: "登出流水号
/// 与当次登入流水号一致"); one that does not is answered 0x02 (`logout_serial_mismatch`) and the
/// login stays. Serials outside 1–65531 are refused by the decoder (`bad_serial`).
public struct GBT32960SessionStateMachine: Sendable {
    public enum State: Sendable, Hashable {
        case awaitingLogin
        /// A vehicle (or allow-listed unit) logged in with this VIN.
        case vehicleLoggedIn(VIN)
        /// A platform logged in.
        case platformLoggedIn
        case closed
    }

    /// What the answer's data unit holds (HorgosGBT32960's rule, section 6.3.2 of the standard).
    public typealias AnswerData = GBT32960AnswerData

    public enum Action: Sendable, Hashable {
        case none
        /// Answer now with this flag and data; then close when `close`.
        case answer(GBT32960ResponseFlag, AnswerData, close: Bool)
        /// Hand the frame to storage; answer success (request time) after the commit.
        case store(VIN)
        /// Log this VIN in (the handler checks for a live session of the same VIN, answering 0x03).
        case loginVehicle(VIN)
        /// Drop the connection without an answer.
        case close
    }

    /// Why a frame got an error answer or none (the `reason` label of the errors metric).
    public private(set) var lastRefusal: String?
    public let peer: GBT32960Peer
    public let maxErrors: Int
    public private(set) var state: State = .awaitingLogin
    public private(set) var consecutiveErrors = 0
    /// The serial of each VIN's login on this connection (a vehicle's own, or those a platform
    /// forwarded), which its logout must repeat.
    public private(set) var loginSerials: [VIN: UInt16] = [:]
    /// The serial of the platform's login (0x05), which its logout (0x06) must repeat.
    public private(set) var platformSerial: UInt16?
    /// The serial of the vehicle login waiting for `vehicleLogin(_:duplicate:)`.
    private var pendingSerial: UInt16?

    public init(peer: GBT32960Peer, maxErrors: Int) {
        self.peer = peer
        self.maxErrors = maxErrors
    }

    /// A frame that decoded (`bodyError` nil) or whose data unit was refused by name; `serial` is the
    /// serial of a login or logout (`GBT32960FrameCheck.serial`).
    public mutating func received(
        _ header: GBT32960FrameHeader, bodyError: GBT32960Error?, serial: UInt16? = nil
    ) -> Action {
        guard state != .closed else { return .none }
        if header.response != .command { return refuse("unexpected_answer", header, answer: false) }
        if let bodyError { return refuse(bodyError.name, header) }
        let command = header.command
        if command == .timeCalibration { return succeed(.serverTime) }
        switch peer {
        case .vehicle, .allowListed:
            if command == .platformLogin || command == .platformLogout { return refuse("role_mismatch", header) }
            guard let vin = header.vinField.vin else { return refuse("bad_vin", header) }
            guard isAllowed(vin) else { return refuse("vin_not_allowed", header) }
            if command == .vehicleLogin {
                pendingSerial = serial
                return .loginVehicle(vin)
            }
            guard case .vehicleLoggedIn(let current) = state, current == vin else {
                return refuse("login_required", header)
            }
            switch command {
            case .realtime, .reissue: return .store(vin)
            case .heartbeat: return succeed(.keepingTime(of: header))
            case .vehicleLogout:
                guard loginSerials[vin] == serial else { return refuse("logout_serial_mismatch", header) }
                loginSerials[vin] = nil
                state = .awaitingLogin
                return succeed(.keepingTime(of: header))
            default: return refuse("unexpected_command", header)
            }
        case .platform:
            switch command {
            case .platformLogin:
                state = .platformLoggedIn
                platformSerial = serial
                return succeed(.keepingTime(of: header))
            case .platformLogout:
                guard state == .platformLoggedIn else { return refuse("login_required", header) }
                guard platformSerial == serial else { return refuse("logout_serial_mismatch", header) }
                state = .awaitingLogin
                platformSerial = nil
                loginSerials = [:]
                return succeed(.keepingTime(of: header))
            default: break
            }
            guard state == .platformLoggedIn else { return refuse("login_required", header) }
            switch command {
            case .heartbeat: return succeed(.keepingTime(of: header))
            case .vehicleLogin, .vehicleLogout, .realtime, .reissue:
                guard let vin = header.vinField.vin else { return refuse("bad_vin", header) }
                switch command {
                case .vehicleLogin:
                    pendingSerial = serial
                    return .loginVehicle(vin)
                case .vehicleLogout:
                    guard let login = loginSerials[vin] else { return refuse("login_required", header) }
                    guard login == serial else { return refuse("logout_serial_mismatch", header) }
                    loginSerials[vin] = nil
                    return succeed(.keepingTime(of: header))
                default: return .store(vin)
                }
            default: return refuse("unexpected_command", header)
            }
        }
    }

    /// The outcome of `.loginVehicle`: `duplicate` when the VIN has a live session elsewhere.
    public mutating func vehicleLogin(_ vin: VIN, duplicate: Bool) -> Action {
        let serial = pendingSerial
        pendingSerial = nil
        if duplicate {
            lastRefusal = "vin_duplicate"
            return countError(.vinDuplicate, .requestTime)
        }
        if case .platform = peer {} else {
            state = .vehicleLoggedIn(vin)
            loginSerials = [:]
        }
        loginSerials[vin] = serial
        return succeed(.requestTime)
    }

    /// A stored frame's commit: success, or error when storage did not keep it (outside the horizon).
    public mutating func committed(stored: Bool) -> Action {
        stored ? succeed(.requestTime) : countError(.error, .requestTime, reason: "outside_horizon")
    }

    /// A delimited frame with a bad BCC: an error answer naming its header.
    public mutating func refused(_ header: GBT32960FrameHeader, _ error: GBT32960Error) -> Action {
        refuse(error.name, header)
    }

    /// Bytes that are no frame: counted as an error, no answer.
    public mutating func garbage(_ error: GBT32960Error) -> Action {
        lastRefusal = error.name
        consecutiveErrors += 1
        if consecutiveErrors >= maxErrors {
            state = .closed
            return .close
        }
        return .none
    }

    /// The frame names a VIN the deny list revokes (`vin:`; a platform's or an allow-listed unit's frame):
    /// an error answer; nothing is stored and the VIN is not logged in.
    public mutating func vinRevoked(_ header: GBT32960FrameHeader) -> Action {
        refuse("vin_revoked", header)
    }

    /// Storage refused the frame (queue over its bound, stopping): error answer and close.
    public mutating func storageRefused() -> Action {
        lastRefusal = "server_busy"
        state = .closed
        return .answer(.error, .requestTime, close: true)
    }

    /// The connection closed.
    public mutating func closed() { state = .closed }

    private func isAllowed(_ vin: VIN) -> Bool {
        switch peer {
        case .vehicle(let own, _): vin == own
        case .allowListed(let vins, _): vins.contains(vin)
        case .platform: true
        }
    }

    private mutating func succeed(_ data: AnswerData) -> Action {
        consecutiveErrors = 0
        return .answer(.success, data, close: false)
    }

    private mutating func refuse(_ reason: String, _ header: GBT32960FrameHeader, answer: Bool = true) -> Action {
        lastRefusal = reason
        guard answer else { return garbage(.unknownResponseFlag(header.response.rawValue)) }
        return countError(.error, .keepingTime(of: header))
    }

    private mutating func countError(
        _ flag: GBT32960ResponseFlag, _ data: AnswerData, reason: String? = nil
    ) -> Action {
        if let reason { lastRefusal = reason }
        consecutiveErrors += 1
        let close = consecutiveErrors >= maxErrors
        if close { state = .closed }
        return .answer(flag, data, close: close)
    }
}
