import Foundation
import HorgosStore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes to stdout and stderr, with ANSI colour only when stdout is a terminal and `NO_COLOR` is
/// unset (https://no-color.org) and `TERM` is not `dumb`.
enum Console {
    static let colour: Bool = {
        let environment = ProcessInfo.processInfo.environment
        if let noColour = environment["NO_COLOR"], !noColour.isEmpty { return false }
        if environment["TERM"] == "dumb" { return false }
        return isatty(1) == 1
    }()

    /// Text on stdout.
    static func out(_ text: String) { writeAll(fd: 1, Array(text.utf8)) }

    /// One line on stdout.
    static func line(_ text: String = "") { out(text + "\n") }

    /// One line on stderr.
    static func error(_ text: String) { writeAll(fd: 2, Array((text + "\n").utf8)) }

    /// Writes every byte to a file descriptor (retrying short writes and EINTR); gives up on an error
    /// such as a closed pipe (`horgosctl export | head`).
    static func writeAll(fd: Int32, _ bytes: some Collection<UInt8>) {
        let buffer = Array(bytes)
        var written = 0
        while written < buffer.count {
            let n = buffer[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            written += n
        }
    }

    static func bold(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    static func red(_ text: String) -> String { colour ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
    static func yellow(_ text: String) -> String { colour ? "\u{1B}[33m\(text)\u{1B}[0m" : text }
    static func green(_ text: String) -> String { colour ? "\u{1B}[32m\(text)\u{1B}[0m" : text }

    /// Encodes `value` as pretty JSON with sorted keys and prints it.
    static func json(_ value: some Encodable) throws(CtlError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(value)
            line(String(decoding: data, as: UTF8.self))
        } catch {
            throw CtlError(.failure, "cannot encode the JSON output: \(error)", remedy: "report this as a bug")
        }
    }
}

/// An aligned text table: numbers right-aligned, text left-aligned, two spaces between columns.
///
/// Widths are measured on the plain text; a cell's colour (applied by `style`) does not shift the
/// columns.
struct TextTable {
    /// A column: its header and whether its values are numbers (right-aligned).
    struct Column {
        var title: String
        var numeric: Bool
        init(_ title: String, numeric: Bool = false) {
            self.title = title
            self.numeric = numeric
        }
    }

    var columns: [Column]
    var rows: [[String]] = []
    /// Colours a cell after padding (row, column, padded text).
    var style: (Int, Int, String) -> String = { _, _, text in text }

    init(_ columns: [Column]) { self.columns = columns }

    mutating func append(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = columns.map(\.title.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func pad(_ text: String, _ index: Int) -> String {
            let fill = String(repeating: " ", count: max(0, widths[index] - text.count))
            return columns[index].numeric ? fill + text : text + fill
        }
        var lines: [String] = []
        let header = columns.indices.map { pad(columns[$0].title, $0) }.joined(separator: "  ")
        lines.append(Console.bold(trimTrailing(header)))
        for (rowIndex, row) in rows.enumerated() {
            let cells = columns.indices.map { index in
                style(rowIndex, index, pad(index < row.count ? row[index] : "", index))
            }
            lines.append(trimTrailing(cells.joined(separator: "  ")))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func trimTrailing(_ text: String) -> String {
        var text = Substring(text)
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}

/// Human formatting of stored values.
enum Format {
    /// `2026-11-29T10:00:00Z` (UTC, whole seconds) of a time in ms since the epoch.
    static func time(_ ms: Int64?) -> String {
        guard let ms else { return "-" }
        let day = UTCDay(epochMs: ms)
        let inDay = (ms - day.startMs) / 1000
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(day)T\(two(inDay / 3600)):\(two(inDay / 60 % 60)):\(two(inDay % 60))Z"
    }

    /// `value / 10^scale` with exactly `scale` decimals, without floating point (`fixed(250000001, 7)`
    /// is `25.0000001`).
    static func fixed(_ value: Int64, _ scale: Int) -> String {
        if scale == 0 { return String(value) }
        var divisor: Int64 = 1
        for _ in 0..<scale { divisor *= 10 }
        let magnitude = value.magnitude
        let whole = magnitude / UInt64(divisor)
        let fraction = String(magnitude % UInt64(divisor))
        let sign = value < 0 ? "-" : ""
        return "\(sign)\(whole).\(String(repeating: "0", count: scale - fraction.count))\(fraction)"
    }

    static func optional<T: BinaryInteger>(_ value: T?, scale: Int = 0, suffix: String = "") -> String {
        guard let value else { return "-" }
        return fixed(Int64(value), scale) + suffix
    }

    /// Bytes as `12.3 MiB`.
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// "3m ago" style age of `ms` at `nowMs`.
    static func age(_ ms: Int64?, nowMs: Int64) -> String {
        guard let ms else { return "never" }
        let seconds = (nowMs - ms) / 1000
        if seconds < 0 { return "in the future" }
        if seconds < 120 { return "\(seconds)s ago" }
        if seconds < 7200 { return "\(seconds / 60)m ago" }
        if seconds < 172_800 { return "\(seconds / 3600)h ago" }
        return "\(seconds / 86400)d ago"
    }
}
