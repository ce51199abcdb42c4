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
    ///
    /// A file that is empty (or only whitespace), or whose last line has no newline, is refused as
    /// truncated: an empty file written by a failed copy must not un-revoke every entry. A list that
    /// revokes nothing is written as a comment line (`# nothing revoked`).
    public init(contentsOfFile path: String) throws(RevocationListError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RevocationListError(line: 0, text: path, reason: "cannot read: \(error.localizedDescription)")
        }
        if text.allSatisfy(\.isWhitespace) {
            throw RevocationListError(
                line: 0, text: path,
                reason: "the file is empty (truncated?); write '# nothing revoked' to revoke nothing")
        }
        if !text.hasSuffix("\n") {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            throw RevocationListError(
                line: lines.count, text: String(lines.last ?? ""),
                reason: "the last line has no newline (truncated?); end the file with a newline")
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

/// The revocation state currently in force (deny list and CRLs), shared by all connections and swapped
/// atomically on reload.
///
/// Thread-safe (a mutex around a value). A reload that fails keeps the previous state, whole: a new deny
/// list is never combined with old CRLs or the other way round.
public final class RevocationListHolder: Sendable {
    private let state: Mutex<Revocations>
    /// Where the state is read from.
    public let sources: RevocationSources
    /// The deny-list file reloaded by ``reload()``; nil means no deny list.
    public var path: String? { sources.denyListPath }
    /// When false, a missing deny-list file is an empty list (the default `<state>/pki/revoked.txt` case).
    public var required: Bool { sources.denyListRequired }

    /// Loads a deny list only (no CRL).
    ///
    /// - Parameter required: whether a missing file is an error (an explicitly configured list) or an
    ///   empty list (the optional default location).
    public init(path: String?, required: Bool) throws(RevocationListError) {
        let sources = RevocationSources(denyListPath: path, denyListRequired: required)
        self.sources = sources
        var list = RevocationList()
        if let path, required || FileManager.default.fileExists(atPath: path) {
            list = try RevocationList(contentsOfFile: path)
        }
        self.state = Mutex(Revocations(denyList: list))
    }

    /// Loads every source now.
    public init(sources: RevocationSources) throws(RevocationLoadError) {
        self.sources = sources
        self.state = Mutex(try Revocations.load(sources))
    }

    /// The deny list in force.
    public var current: RevocationList { state.withLock { $0.denyList } }

    /// The whole state in force.
    public var revocations: Revocations { state.withLock { $0 } }

    /// True when the serial or the VIN is revoked by the state in force.
    public func isRevoked(serialNumber: String, vin: String?) -> Bool {
        state.withLock { $0.isRevoked(serialNumber: serialNumber, vin: vin) }
    }

    /// True when the VIN is on the deny list in force (a gateway's frames for it are refused).
    public func isRevoked(vin: String) -> Bool {
        state.withLock { $0.denyList.vins.contains(vin) }
    }

    /// Re-reads every source (SIGHUP); on error the previous state stays and the error is thrown.
    @discardableResult
    public func reload() throws(RevocationLoadError) -> Revocations {
        let loaded = try Revocations.load(sources)
        state.withLock { $0 = loaded }
        return loaded
    }

    /// Installs an already loaded state (a reload that checked every part first).
    public func install(_ revocations: Revocations) {
        state.withLock { $0 = revocations }
    }
}

/// Where revocations come from: the deny-list file and the CRL files, checked against the fleet CA.
public struct RevocationSources: Sendable, Hashable {
    /// The deny-list file; nil: none.
    public var denyListPath: String?
    /// Whether a missing deny-list file is an error.
    public var denyListRequired: Bool
    /// `tls.crl`: CRL files (PEM or DER).
    public var crlPaths: [String]
    /// The fleet CA file the CRLs must be signed by (needed when ``crlPaths`` is not empty).
    public var caCertificatePath: String

    /// Sources from their parts.
    public init(
        denyListPath: String?, denyListRequired: Bool, crlPaths: [String] = [], caCertificatePath: String = ""
    ) {
        self.denyListPath = denyListPath
        self.denyListRequired = denyListRequired
        self.crlPaths = crlPaths
        self.caCertificatePath = caCertificatePath
    }
}

/// One consistent revocation state: the deny list plus every CRL.
public struct Revocations: Sendable, Hashable {
    /// The deny list (serials and VINs).
    public var denyList: RevocationList
    /// The CRLs, each verified against the fleet CA.
    public var crls: [CertificateRevocationList]
    /// Every serial revoked by some CRL.
    public private(set) var crlSerialNumbers: Set<String>

    /// A state from its parts.
    public init(denyList: RevocationList = RevocationList(), crls: [CertificateRevocationList] = []) {
        self.denyList = denyList
        self.crls = crls
        self.crlSerialNumbers = crls.reduce(into: []) { $0.formUnion($1.serialNumbers) }
    }

    /// True when a CRL or the deny list revokes the serial, or the deny list names the VIN.
    public func isRevoked(serialNumber: String, vin: String?) -> Bool {
        crlSerialNumbers.contains(serialNumber) || denyList.isRevoked(serialNumber: serialNumber, vin: vin)
    }

    /// CRLs whose `nextUpdate` has passed.
    public func staleCRLs(now: Date = Date()) -> [CertificateRevocationList] {
        crls.filter { $0.isStale(now: now) }
    }

    /// Reads and checks every source; the first problem is thrown.
    public static func load(_ sources: RevocationSources) throws(RevocationLoadError) -> Revocations {
        var denyList = RevocationList()
        if let path = sources.denyListPath, sources.denyListRequired || FileManager.default.fileExists(atPath: path) {
            do {
                denyList = try RevocationList(contentsOfFile: path)
            } catch {
                throw .denyList(error)
            }
        }
        var crls: [CertificateRevocationList] = []
        for path in sources.crlPaths {
            do {
                crls += try CertificateRevocationList.load(path: path, caCertificatePath: sources.caCertificatePath)
            } catch {
                throw .crl(error)
            }
        }
        return Revocations(denyList: denyList, crls: crls)
    }
}

/// Why the revocation state could not be loaded.
public enum RevocationLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The deny list (`tls.revocation_list`) is unreadable, empty, truncated or has a bad line.
    case denyList(RevocationListError)
    /// A CRL (`tls.crl`) is unreadable, malformed, from another CA or badly signed.
    case crl(CRLError)

    /// `tls.revocation_list: ...` or `tls.crl: ...`.
    public var description: String {
        switch self {
        case .denyList(let error): "tls.revocation_list: \(error)"
        case .crl(let error): "tls.crl: \(error)"
        }
    }
}

extension VIN {
    /// True for exactly 17 characters of `[A-HJ-NPR-Z0-9]` (no I, O, Q); the check digit is not verified.
    public static func isValid(_ text: String) -> Bool { VIN(text) != nil }
}
