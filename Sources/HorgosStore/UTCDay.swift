/// A UTC calendar day, the unit of telemetry partitioning (`telemetry-YYYY-MM-DD.sqlite`).
///
/// Stored as days since 1970-01-01; conversion uses the proleptic Gregorian calendar without
/// Foundation so the hot path (one division per record) allocates nothing.
public struct UTCDay: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let millisecondsPerDay: Int64 = 86_400_000
    /// Days since 1970-01-01.
    public let dayNumber: Int64

    public init(dayNumber: Int64) { self.dayNumber = dayNumber }

    /// The day holding `epochMs` (floor division, so negative times land on earlier days).
    @inline(__always)
    public init(epochMs: Int64) {
        let (q, r) = epochMs.quotientAndRemainder(dividingBy: UTCDay.millisecondsPerDay)
        self.dayNumber = r < 0 ? q - 1 : q
    }

    /// First millisecond of the day.
    public var startMs: Int64 { dayNumber * UTCDay.millisecondsPerDay }
    /// First millisecond of the next day (exclusive end).
    public var endMs: Int64 { startMs + UTCDay.millisecondsPerDay }

    /// (year, month 1-12, day 1-31), after H. Hinnant's civil_from_days.
    public var civil: (year: Int64, month: Int64, day: Int64) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// The day of a civil date.
    public init(year: Int64, month: Int64, day: Int64) {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        self.dayNumber = era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM-DD`.
    public var description: String {
        let (y, m, d) = civil
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }

    /// Parses `YYYY-MM-DD`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
            (1...12).contains(m), (1...31).contains(d)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// The partition file name of this day.
    public var partitionFileName: String { "telemetry-\(description).sqlite" }

    /// The day of a partition file name, nil for any other file.
    public init?(partitionFileName name: String) {
        guard name.hasPrefix("telemetry-"), name.hasSuffix(".sqlite") else { return nil }
        let stamp = name.dropFirst("telemetry-".count).dropLast(".sqlite".count)
        self.init(stamp)
    }

    public static func < (lhs: UTCDay, rhs: UTCDay) -> Bool { lhs.dayNumber < rhs.dayNumber }
}
