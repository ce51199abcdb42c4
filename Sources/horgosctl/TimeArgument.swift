import Foundation
import HorgosStore

/// A point in time given on the command line: ISO 8601 or "that long ago".
///
/// Accepted forms: `2026-11-29T10:00:00Z` (also with fractional seconds or a `+hh:mm` offset),
/// `2026-11-29` (midnight UTC), `now`, and relative `90s`, `15m`, `2h`, `7d` (that long before now).
/// Relative forms are resolved when the command runs, against `CtlClock.nowMs()`.
struct TimeArgument: Sendable, Hashable {
    /// The expression as given.
    let text: String
    private let resolve: Resolution

    private enum Resolution: Sendable, Hashable {
        case absolute(Int64)
        case ago(Int64)
    }

    /// Parses `text`; nil when it is none of the accepted forms.
    init?(_ text: String) {
        self.text = text
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "now" {
            resolve = .ago(0)
        } else if let ago = Self.parseDuration(trimmed) {
            resolve = .ago(ago)
        } else if let day = UTCDay(trimmed), trimmed.count == 10 {
            resolve = .absolute(day.startMs)
        } else if let ms = Self.parseISO8601(trimmed) {
            resolve = .absolute(ms)
        } else {
            return nil
        }
    }

    /// Milliseconds since the epoch, relative forms counted back from `nowMs`.
    func epochMs(nowMs: Int64) -> Int64 {
        switch resolve {
        case .absolute(let ms): ms
        case .ago(let ms): nowMs - ms
        }
    }

    /// `90s`, `15m`, `2h`, `7d` as milliseconds; nil otherwise.
    static func parseDuration(_ text: String) -> Int64? {
        guard let unit = text.last, let count = Int64(text.dropLast()), count >= 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        default: return nil
        }
        let (ms, overflow) = count.multipliedReportingOverflow(by: scale)
        return overflow ? nil : ms
    }

    static func parseISO8601(_ text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }

    /// The option transform: a parse failure says which forms are accepted.
    static func parse(_ text: String) throws -> TimeArgument {
        guard let time = TimeArgument(text) else { throw TimeArgumentError(text: text) }
        return time
    }

    /// What the help and error messages say is accepted.
    static let accepted = "ISO 8601 (2026-11-29T10:00:00Z, 2026-11-29) or that long ago (90s, 15m, 2h, 7d, now)."
}

/// The CLI's notion of "now".
///
/// The wall clock, unless `HORGOSCTL_NOW` holds an ISO 8601 time: then every relative time, the
/// fleet's "reporting in the last hour" and retention are computed as of that instant (reproducible
/// reports of a past moment, and deterministic tests).
enum CtlClock {
    static func nowMs() -> Int64 {
        if let text = ProcessInfo.processInfo.environment["HORGOSCTL_NOW"], !text.isEmpty,
            let time = TimeArgument(text)
        {
            return time.epochMs(nowMs: StoreClock.systemMs())
        }
        return StoreClock.systemMs()
    }
}

/// A command-line time that is none of the accepted forms.
struct TimeArgumentError: Error, CustomStringConvertible {
    var text: String
    var description: String { "\"\(text)\" is not a time; use \(TimeArgument.accepted)" }
}
