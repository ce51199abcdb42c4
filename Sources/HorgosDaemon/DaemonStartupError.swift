#if canImport(Glibc)
    import Glibc
#endif

/// Why the daemon could not start, with the exit status it maps to (78 EX_CONFIG: configuration or
/// certificates; 73 EX_CANTCREAT: the store cannot be opened).
public struct DaemonStartupError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, naming the key or file.
    public var message: String
    /// The process exit status.
    public var exitCode: Int32

    /// An error from its parts.
    public init(message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    /// The message.
    public var description: String { message }
}

extension Daemon {
    /// Writes one line to stderr without Foundation's buffering (before logging is set up).
    public static func printToStandardError(_ text: String) {
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
