/// A data-unit time: six bytes YY MM DD hh mm ss (year 2000 + YY), in the unit's time base.
///
/// The standard's base is Beijing time (GMT+8); a listener setting says which offset its units
/// use, and `epochSeconds(utcOffsetSeconds:)` turns the wall-clock time into UTC.
public struct GBT32960Time: Sendable, Hashable, CustomStringConvertible {
    public var year: UInt8
    public var month: UInt8
    public var day: UInt8
    public var hour: UInt8
    public var minute: UInt8
    public var second: UInt8

    /// A time from its fields; `badTime` unless it is a calendar time in 2000–2099.
    @inlinable
    public init(year: UInt8, month: UInt8, day: UInt8, hour: UInt8, minute: UInt8, second: UInt8)
        throws(GBT32960Error)
    {
        guard year <= 99, month >= 1, month <= 12, day >= 1,
            day <= GBT32960Time.daysInMonth(year: Int(year) + 2000, month: Int(month)),
            hour <= 23, minute <= 59, second <= 59
        else { throw .badTime }
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// Reads the six bytes at the start of `bytes` (which holds at least six).
    @inlinable
    public init(bytes: UnsafeRawBufferPointer) throws(GBT32960Error) {
        try self.init(
            year: bytes.byte(0), month: bytes.byte(1), day: bytes.byte(2), hour: bytes.byte(3),
            minute: bytes.byte(4), second: bytes.byte(5))
    }

    /// The wall-clock time of `epochSeconds` (UTC) in a base `utcOffsetSeconds` east of UTC.
    /// Times outside 2000–2099 are clamped to its ends.
    public init(epochSeconds: Int64, utcOffsetSeconds: Int) {
        let minimum: Int64 = 946_684_800, maximum: Int64 = 4_102_444_799  // 2000-01-01, 2099-12-31 23:59:59
        let local = min(max(epochSeconds + Int64(utcOffsetSeconds), minimum), maximum)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondsOfDay = Int(local - days * 86_400)
        let (y, m, d) = GBT32960Time.civil(fromDays: Int(days))
        self.year = UInt8(y - 2000)
        self.month = UInt8(m)
        self.day = UInt8(d)
        self.hour = UInt8(secondsOfDay / 3600)
        self.minute = UInt8(secondsOfDay / 60 % 60)
        self.second = UInt8(secondsOfDay % 60)
    }

    /// Seconds since 1970-01-01 UTC, the time read in a base `utcOffsetSeconds` east of UTC.
    @inlinable
    public func epochSeconds(utcOffsetSeconds: Int) -> Int64 {
        let days = GBT32960Time.days(fromCivil: Int(year) + 2000, Int(month), Int(day))
        let local = Int64(days) * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
        return local - Int64(utcOffsetSeconds)
    }

    /// The six wire bytes.
    public var bytes: [UInt8] { [year, month, day, hour, minute, second] }

    /// `20YY-MM-DD hh:mm:ss`, in the time's own base.
    public var description: String {
        func two(_ v: UInt8) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "20\(two(year))-\(two(month))-\(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
    }

    @inlinable
    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    @inlinable
    static func daysInMonth(year: Int, month: Int) -> UInt8 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    @inlinable
    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date of a day count since 1970-01-01 (civil_from_days).
    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
