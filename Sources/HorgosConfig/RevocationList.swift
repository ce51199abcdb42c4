import HorgosWire
import Foundation
import Synchronization

/// A deny list of revoked certificates (by serial) and vehicles (by VIN), checked after each handshake.
///
/// File format, UTF-8 text, one entry per line:
/// ```
/// # comments start with '#', also after an entry; blank lines are ignored
/// serial:0A1B2C3D4E5F...     # certificate serial in hex; case, ':' separators and leading zeros ignored
/// vin:LSVAU2180N2183294      # every certificate of this vehicle (17 chars of [A-HJ-NPR-Z0-9])
/// ```
/// Any other line is an error naming its line number, and the previous list stays in force on reload.
/// Limits: exact matches only (no ranges or wildcards); this is not an X.509 CRL (a CRL may be added
/// beside it later).
public struct RevocationList: Sendable, Hashable {
    /// Revoked serials, normalised (lower-case hex, no separators, no leading zeros).
    public private(set) var serialNumbers: Set<String>
    /// Revoked VINs (upper case).
    public private(set) var vins: Set<String>

    /// An empty list (nothing revoked).
    public init() {
        serialNumbers = []
        vins = []
    }

    /// Parses the file format described on the type.
    public init(parsing text: String) throws(RevocationListError) {
        self.init()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let entry = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if entry.isEmpty { continue }
            let lineNumber = index + 1
            guard let colon = entry.firstIndex(of: ":") else {
                throw RevocationListError(line: lineNumber, text: entry, reason: "expected serial:<hex> or vin:<VIN>")
            }
            let kind = entry[..<colon].lowercased()
            let value = entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch kind {
            case "serial":
                guard let serial = Self.normalisedSerial(value) else {
                    throw RevocationListError(line: lineNumber, text: entry, reason: "serial is not hexadecimal")
                }
                serialNumbers.insert(serial)
            case "vin":
                let vin = value.uppercased()
                guard VIN(vin) != nil else {
                    throw RevocationListError(
                        line: lineNumber, text: entry, reason: "VIN is not 17 characters of [A-HJ-NPR-Z0-9]")
                }
                vins.insert(vin)
            default:
                throw RevocationListError(line: lineNumber, text: entry, reason: "expected serial:<hex> or vin:<VIN>")
            }
        }
    }

    /// Reads and parses a file; a missing file is an error (callers decide whether absence is fine).
    public init(contentsOfFile path: String) throws(RevocationListError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RevocationListError(line: 0, text: path, reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(parsing: text)
    }

    /// True when the certificate serial (normalised, as ``normalisedSerial(_:)`` gives it) or the VIN is listed.
    public func isRevoked(serialNumber: String, vin: String?) -> Bool {
        if serialNumbers.contains(serialNumber) { return true }
        if let vin, vins.contains(vin) { return true }
        return false
    }

    /// Number of entries, for the reload log line.
    public var count: Int { serialNumbers.count + vins.count }

    /// Lower-case hex without separators or leading zeros (the form ``PeerIdentity/serialNumber`` uses).
    public static func normalisedSerial(_ text: String) -> String? {
        let digits = text.lowercased().filter { $0 != ":" }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isHexDigit }) else { return nil }
        let trimmed = digits.drop(while: { $0 == "0" })
        return trimmed.isEmpty ? "0" : String(trimmed)
    }
}

/// A line of a deny-list file that cannot be understood (line 0: the file itself cannot be read).
public struct RevocationListError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based line number; 0 when the file could not be read.
    public var line: Int
    /// The offending text (or the path).
    public var text: String
    /// What is wrong with it.
    public var reason: String

    /// An error from its parts.
    public init(line: Int, text: String, reason: String) {
        self.line = line
        self.text = text
        self.reason = reason
    }

    /// `line 3: "serial:xyz": serial is not hexadecimal`.
    public var description: String {
        line == 0 ? "\(text): \(reason)" : "line \(line): \"\(text)\": \(reason)"
    }
}

/// The revocation list currently in force, shared by all connections and swapped atomically on reload.
///
/// Thread-safe (a mutex around a value). A reload that fails keeps the previous list.
public final class RevocationListHolder: Sendable {
    private let state: Mutex<RevocationList>
    /// The file reloaded by ``reload()``; nil means nothing is ever revoked.
    public let path: String?
    /// When false, a missing file is an empty list (the default `<state>/pki/revoked.txt` case).
    public let required: Bool

    /// Loads `path` now.
    ///
    /// - Parameter required: whether a missing file is an error (an explicitly configured list) or an
    ///   empty list (the optional default location).
    public init(path: String?, required: Bool) throws(RevocationListError) {
        self.path = path
        self.required = required
        self.state = Mutex(try Self.read(path: path, required: required))
    }

    /// The list in force.
    public var current: RevocationList { state.withLock { $0 } }

    /// True when the serial or the VIN is revoked by the list in force.
    public func isRevoked(serialNumber: String, vin: String?) -> Bool {
        state.withLock { $0.isRevoked(serialNumber: serialNumber, vin: vin) }
    }

    /// Re-reads the file (SIGHUP); on error the previous list stays and the error is thrown for the log.
    @discardableResult
    public func reload() throws(RevocationListError) -> RevocationList {
        let list = try Self.read(path: path, required: required)
        state.withLock { $0 = list }
        return list
    }

    private static func read(path: String?, required: Bool) throws(RevocationListError) -> RevocationList {
        guard let path else { return RevocationList() }
        if !required && !FileManager.default.fileExists(atPath: path) { return RevocationList() }
        return try RevocationList(contentsOfFile: path)
    }
}
