import Foundation
import Synchronization
import Yams

/// The configuration's valid keys and the strict check of a file against them.
///
/// The set is not a second list to keep in step with the loader: the loader notes every key it reads
/// (`KeyReader`), so a key added to the loader is valid at once, and a key in the file that the loader
/// never read is a mistake (`store:\n  duribility: disk` would otherwise leave `store.durability` at its
/// default while the operator believes it set). Such a key stops startup (exit 78) naming the closest
/// valid key; an unknown `HORGOS_*` variable only warns, since scripts and units set variables of their own
/// with that prefix (`HORGOS_TEST_HOOKS`, the HAProxy environment file).
public final class ConfigurationKeys: Sendable {
    private let keys = Mutex<Set<String>>([])

    /// An empty set (the loader fills it).
    public init() {}

    /// Marks `key` as valid.
    func note(_ key: String) { _ = keys.withLock { $0.insert(key) } }

    /// The valid keys noted so far.
    public var all: Set<String> { keys.withLock { $0 } }

    /// `HORGOS_` variables that are not configuration keys but are read by Horgos or its scripts.
    public static let otherVariables: Set<String> = ["HORGOS_TEST_HOOKS"]

    /// Throws ``HorgosConfigurationError/Code/unknownKey`` for the first of `fileKeys` that is not valid.
    func check(_ fileKeys: [String]) throws(HorgosConfigurationError) {
        let known = all
        for key in fileKeys where !known.contains(key) {
            // A section left empty (`gbt32960:` with every key commented out) is not a mistake.
            if key.hasSuffix(ConfigurationKeys.emptySection) {
                let section = String(key.dropLast(ConfigurationKeys.emptySection.count))
                if known.contains(where: { $0.hasPrefix(section + ".") }) { continue }
            }
            let name = key.hasSuffix(ConfigurationKeys.emptySection)
                ? String(key.dropLast(ConfigurationKeys.emptySection.count)) : key
            throw HorgosConfigurationError(
                code: .unknownKey, key: name, value: nil,
                allowed: "the nearest valid key is \(Self.nearest(to: name, in: known)) (see Deploy/horgosd.yaml)")
        }
    }

    /// One warning for each `HORGOS_` variable of `environment` that names no key.
    func environmentWarnings(_ environment: [String: String]) -> [String] {
        let known = all
        var byVariable: [String: String] = [:]
        for key in known { byVariable[Self.variable(for: key)] = key }
        return environment.keys.sorted().compactMap { name in
            guard name.hasPrefix("HORGOS_"), byVariable[name] == nil, !Self.otherVariables.contains(name) else {
                return nil
            }
            let closest = Self.nearest(to: name, in: Set(byVariable.keys))
            return "environment variable \(name) is not a configuration key and is ignored; the nearest is "
                + "\(closest) (\(byVariable[closest] ?? "?"))"
        }
    }

    /// `limits.ack_window` -> `HORGOS_LIMITS_ACK_WINDOW`.
    public static func variable(for key: String) -> String {
        "HORGOS_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// The candidate with the smallest edit distance to `name` (ties: the alphabetically first).
    static func nearest(to name: String, in candidates: Set<String>) -> String {
        candidates.min { a, b in
            let (da, db) = (editDistance(name, a), editDistance(name, b))
            return da != db ? da < db : a < b
        } ?? "(none)"
    }

    /// Levenshtein distance over UTF-8 bytes.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        if x.isEmpty { return y.count }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in stride(from: 1, through: y.count, by: 1) {
                let substitution = previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    /// Marks a key whose value is empty (a section with nothing in it, or a key left blank).
    static let emptySection = " (empty)"

    /// The dotted keys of a YAML document: nested mappings are joined with `.`, anything else (a scalar,
    /// a list) is a value. A key with no value is returned with ``emptySection`` appended.
    public static func keys(ofYAML text: String) throws -> [String] {
        guard let root = try Yams.compose(yaml: text) else { return [] }
        var keys: [String] = []
        func walk(_ node: Node, _ prefix: String) {
            guard case .mapping(let mapping) = node else { return }
            for (key, value) in mapping {
                let name = key.string ?? "\(key)"
                let path = prefix.isEmpty ? name : prefix + "." + name
                switch value {
                case .mapping: walk(value, path)
                case .scalar(let scalar) where scalar.string.isEmpty && scalar.style == .plain:
                    keys.append(path + emptySection)
                default: keys.append(path)
                }
            }
        }
        walk(root, "")
        return keys
    }
}
