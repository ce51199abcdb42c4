import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A swift-log handler writing one line per event to stderr, in the form journald understands.
///
/// Under journald (stderr is the stream named by `JOURNAL_STREAM`) each line starts with the syslog
/// priority, `<6>horgosd: peer authenticated peer=...`, so `journalctl -p warning` works and no timestamp is
/// duplicated. Elsewhere: `2026-11-29T09:00:00.123Z INFO horgosd: message key=value`. Newlines inside a
/// message or value are escaped so one event is always one line.
///
/// The stderr handlers never write on the caller's thread (an event loop must not wait for journald):
/// they format the line and hand it to `LogLineQueue.standardError`, whose own thread writes whole
/// lines; when that queue is full the line is dropped and counted, and a warning says how many.
public struct JournalLogHandler: LogHandler {
    /// The line format.
    public enum Format: Sendable, Hashable {
        /// `<N>label: message key=value` (journald).
        case journald
        /// `timestamp LEVEL label: message key=value` (terminal, files).
        case plain
    }

    /// The label, usually the executable name.
    public let label: String
    /// The format chosen at bootstrap.
    public let format: Format
    /// Lowest level written.
    public var logLevel: Logger.Level
    /// Metadata added to every line of this logger.
    public var metadata: Logger.Metadata = [:]
    private let write: @Sendable (String) -> Void

    /// A handler writing to stderr through `LogLineQueue.standardError`, in journald format when
    /// `JOURNAL_STREAM` names stderr.
    public init(label: String, level: Logger.Level = .info, environment: [String: String] = ProcessEnvironment.current)
    {
        self.init(
            label: label, level: level,
            format: Self.stderrIsJournal(environment: environment) ? .journald : .plain,
            queue: .standardError)
    }

    /// A handler handing its lines to `queue` (never blocks on the queue's writer).
    public init(label: String, level: Logger.Level, format: Format, queue: LogLineQueue) {
        self.init(label: label, level: level, format: format, write: { line in queue.enqueue(line) })
    }

    /// A handler with an explicit format and sink (tests).
    public init(label: String, level: Logger.Level, format: Format, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.write = write
    }

    /// Metadata access by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Formats and writes one event.
    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        write(formatLine(level: event.level, message: "\(event.message)", metadata: merged))
    }

    /// The line for an event, newline-terminated.
    public func formatLine(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line: String
        switch format {
        case .journald:
            line = "<\(Self.syslogPriority(level))>\(label): "
        case .plain:
            line = "\(Self.timestamp()) \(level.rawValue.uppercased()) \(label): "
        }
        line += Self.escape(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=\(Self.quoteIfNeeded(Self.escape("\(metadata[key]!)")))"
        }
        return line + "\n"
    }

    /// swift-log level to syslog priority (trace and debug both map to 7, debug).
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// True when `JOURNAL_STREAM` (`device:inode`) matches stderr, as sd_journal_stream_fd documents.
    public static func stderrIsJournal(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        return stderrStreamIdentity() == "\(device):\(inode)"
    }

    /// `device:inode` of stderr, the form systemd puts in `JOURNAL_STREAM`; nil if fstat fails.
    static func stderrStreamIdentity() -> String? { PosixClock.stderrIdentity() }

    static func escape(_ text: String) -> String {
        guard text.contains(where: { $0.isNewline }) else { return text }
        return text.replacingNewlines()
    }

    static func quoteIfNeeded(_ text: String) -> String {
        text.isEmpty || text.contains(" ") ? "\"\(text)\"" : text
    }

    static func timestamp() -> String {
        let now = PosixClock.utcNow()
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(now.year)-\(pad(now.month, 2))-\(pad(now.day, 2))T"
            + "\(pad(now.hour, 2)):\(pad(now.minute, 2)):\(pad(now.second, 2)).\(pad(now.millisecond, 3))Z"
    }

    /// Writes `line` to stderr with as many write(2) calls as it takes (the log queue's thread only).
    static func writeToStderr(_ line: String) {
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
        bytes.removeAll()
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        var result = ""
        result.reserveCapacity(utf8.count)
        for character in self {
            switch character {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\r\n": result += "\\r\\n"
            default: result.append(character)
            }
        }
        return result
    }
}
