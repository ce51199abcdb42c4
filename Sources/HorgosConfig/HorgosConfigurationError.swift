/// Why a configuration was refused: the key, the offending value and what is allowed.
///
/// The daemon prints ``description`` and exits with EX_CONFIG (78). Compare ``code`` (and ``key``) in
/// tests; the message may be reworded.
public struct HorgosConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Code: String, Hashable, Sendable {
        /// A key has a value outside what is allowed.
        case invalidValue
        /// An explicitly given configuration file does not exist.
        case fileNotFound
        /// The configuration file exists but cannot be read or parsed.
        case unreadableFile
        /// The file has a key that is no configuration key (a misspelling, or a key of another version).
        case unknownKey
    }

    /// What kind of problem it is.
    public var code: Code
    /// The configuration key (`store.durability`), or the file path for file errors.
    public var key: String
    /// The value as written, when there is one.
    public var value: String?
    /// What is allowed instead, in an operator's words (`use disk, process or replicated`).
    public var allowed: String

    /// An error from its parts.
    public init(code: Code, key: String, value: String?, allowed: String) {
        self.code = code
        self.key = key
        self.value = value
        self.allowed = allowed
    }

    /// A key whose value is not allowed.
    public static func invalid(_ key: String, _ value: String, _ allowed: String) -> Self {
        Self(code: .invalidValue, key: key, value: value, allowed: allowed)
    }

    /// One line for stderr and the log, e.g.
    /// `store.durability: "fast" is not allowed; use disk, process or replicated`.
    public var description: String {
        switch code {
        case .invalidValue:
            "\(key): \"\(value ?? "")\" is not allowed; \(allowed)"
        case .fileNotFound:
            "configuration file \(key) does not exist; \(allowed)"
        case .unreadableFile:
            "configuration file \(key) cannot be read: \(value ?? "unknown error"); \(allowed)"
        case .unknownKey:
            "\(key): unknown key; \(allowed)"
        }
    }
}
