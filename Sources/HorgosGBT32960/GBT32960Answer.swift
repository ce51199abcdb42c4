/// What the data unit of an answer carries.
///
/// GB/T 32960.3-2016 section 6.3.2 (the 2025 edition the same, as rtm_con reads it): the side that
/// answers changes the response flag, **keeps the request's time, deletes the rest of the data
/// unit** and recomputes the BCC. So every answer to a request that has a time (vehicle login,
/// realtime, reissue, vehicle logout, platform login, platform logout) carries exactly that time;
/// a heartbeat, whose data unit is empty, is answered with an empty one; a time calibration, whose
/// request has no time either, is answered with the platform's time (what the command asks for).
public enum GBT32960AnswerData: Sendable, Hashable {
    /// No data unit.
    case empty
    /// The request's time: the first six bytes of its data unit; the rest is dropped.
    case requestTime
    /// The server's current time, in the listener's time base.
    case serverTime

    /// The standard's answer data unit for `request`: its time when its data unit is long enough
    /// to hold one, else nothing.
    @inlinable
    public static func keepingTime(of request: GBT32960FrameHeader) -> GBT32960AnswerData {
        request.dataLength >= GBT32960Format.timeSize ? .requestTime : .empty
    }
}

extension GBT32960Encoder {
    /// Appends the answer to `request`: same edition, command and VIN field (as the request sent
    /// them), the response flag `response`, encryption 0x01 and the data unit `data` says, taken from
    /// `requestDataUnit` (the request's data unit) or `serverTime`.
    @inlinable
    public static func appendAnswer(
        to request: GBT32960FrameHeader, response: GBT32960ResponseFlag, data: GBT32960AnswerData,
        requestDataUnit: UnsafeRawBufferPointer, serverTime: GBT32960Time, to out: inout [UInt8]
    ) {
        appendAnswer(to: request, response: response, to: &out) { out in
            switch data {
            case .empty: break
            case .requestTime:
                if requestDataUnit.count >= GBT32960Format.timeSize {
                    out.append(
                        contentsOf: UnsafeRawBufferPointer(rebasing: requestDataUnit[0..<GBT32960Format.timeSize]))
                }
            case .serverTime: out += serverTime.bytes
            }
        }
    }
}

/// What the listener learns from a delimited frame before it acts on it: whether its data unit is
/// refused (and why), the serial of a login or logout, the values outside their ranges.
public struct GBT32960FrameCheck: Sendable, Hashable {
    /// Why the data unit is refused; nil when it is accepted.
    public var error: GBT32960Error?
    /// The login or logout serial number of 0x01, 0x04, 0x05 and 0x06 (nil for other commands or
    /// a refused data unit).
    public var serial: UInt16?
    /// The values of a realtime or reissue report that the store will keep as not available.
    public var outOfRange: GBT32960OutOfRange

    /// A check result from its parts.
    @inlinable
    public init(error: GBT32960Error? = nil, serial: UInt16? = nil, outOfRange: GBT32960OutOfRange = .init()) {
        self.error = error
        self.serial = serial
        self.outOfRange = outOfRange
    }
}

extension GBT32960FrameView {
    /// Decodes the data unit (`body()`) and reports what the session needs of it.
    public func check() -> GBT32960FrameCheck {
        do throws(GBT32960Error) {
            switch try body() {
            case .vehicleLogin(let login): return GBT32960FrameCheck(serial: login.sequence)
            case .vehicleLogout(let logout), .platformLogout(let logout):
                return GBT32960FrameCheck(serial: logout.sequence)
            case .platformLogin(let login): return GBT32960FrameCheck(serial: login.sequence)
            case .realtime(let report), .reissue(let report):
                return GBT32960FrameCheck(outOfRange: report.valuesOutOfRange)
            case .heartbeat, .timeCalibration: return GBT32960FrameCheck()
            }
        } catch {
            return GBT32960FrameCheck(error: error)
        }
    }
}
