import Foundation
import Testing

/// Checks decoded values against the `expect.*` text of one vector and records which keys it
/// checked, so that a vector line no check reads fails the test (`finish`).
///
/// The file's expect lines are prose-like (`no 1, status 2, ctrl_temp_raw 125 (phys 85 C)`); the
/// checker reads the integer after a name (decimal, `0x` hex, or the first integer in parentheses
/// when the name is followed by a physical value such as `46.8 km/h (468)`).
struct ExpectChecker {
    let vector: GBTVector
    private(set) var covered: Set<String> = []

    init(_ vector: GBTVector) { self.vector = vector }

    private func text(_ key: String, after anchor: String?, sourceLocation: SourceLocation) -> String? {
        guard var text = vector.expects[key] else {
            Issue.record("\(vector): no expect.\(key)", sourceLocation: sourceLocation)
            return nil
        }
        if let anchor {
            guard let range = text.range(of: anchor) else {
                Issue.record("\(vector): expect.\(key) has no '\(anchor)'", sourceLocation: sourceLocation)
                return nil
            }
            text = String(text[range.upperBound...])
        }
        return text
    }

    static func tokens(_ text: String) -> [String] {
        text.split(whereSeparator: { " ,=;".contains($0) }).map {
            String($0).trimmingCharacters(in: .init(charactersIn: "()[]:\""))
        }
    }

    static func integer(_ token: String) -> Int? {
        var t = Substring(token)
        if t.hasPrefix("+") { t = t.dropFirst() }
        if t.lowercased().hasPrefix("0x") { return Int(t.dropFirst(2), radix: 16) }
        return Int(t)
    }

    /// The first integer of the key's text equals `actual`.
    mutating func value(_ key: String, _ actual: some BinaryInteger, sourceLocation: SourceLocation = #_sourceLocation) {
        covered.insert(key)
        guard let text = text(key, after: nil, sourceLocation: sourceLocation) else { return }
        let found = Self.tokens(text).lazy.compactMap(Self.integer).first
        #expect(found == Int(actual), "\(vector) expect.\(key) = \(text)", sourceLocation: sourceLocation)
    }

    /// For each (name, value): the integer after `name` in the key's text (after `anchor`) equals value.
    mutating func pairs(
        _ key: String, after anchor: String? = nil, _ expected: KeyValuePairs<String, Int>,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        covered.insert(key)
        guard let text = text(key, after: anchor, sourceLocation: sourceLocation) else { return }
        let tokens = Self.tokens(text)
        for (name, value) in expected {
            guard let at = tokens.firstIndex(of: name) else {
                Issue.record("\(vector) expect.\(key): no '\(name)'", sourceLocation: sourceLocation)
                continue
            }
            // The integer right after the name, or else the first parenthesised one (the raw value).
            var found = at + 1 < tokens.count ? Self.integer(tokens[at + 1]) : nil
            if found == nil {
                let rest = text.components(separatedBy: " ")
                if let index = rest.firstIndex(where: { Self.tokens($0).first == name }) {
                    found = rest[(index + 1)...].first(where: { $0.hasPrefix("(") })
                        .flatMap { Self.integer($0.trimmingCharacters(in: .init(charactersIn: "(),"))) }
                }
            }
            #expect(found == value, "\(vector) expect.\(key): \(name)", sourceLocation: sourceLocation)
        }
    }

    /// The bracketed list after `name` (or the first list) in the key's text equals `actual`.
    mutating func list(
        _ key: String, name: String? = nil, after anchor: String? = nil, _ actual: [Int],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        covered.insert(key)
        guard var text = text(key, after: anchor, sourceLocation: sourceLocation) else { return }
        if let name, let range = text.range(of: name) { text = String(text[range.upperBound...]) }
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else {
            Issue.record("\(vector) expect.\(key): no list", sourceLocation: sourceLocation)
            return
        }
        let items = text[text.index(after: open)..<close].split(separator: ",").map {
            Self.integer($0.trimmingCharacters(in: .whitespaces))
        }
        #expect(items == actual.map { Optional($0) }, "\(vector) expect.\(key) \(name ?? "")", sourceLocation: sourceLocation)
    }

    /// The decimal after `name` times `scale` rounds to `actual` (`lon 108.284593` with 1e6).
    mutating func decimal(
        _ key: String, name: String, after anchor: String? = nil, _ actual: Int, scale: Double,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        covered.insert(key)
        guard let text = text(key, after: anchor, sourceLocation: sourceLocation) else { return }
        let tokens = Self.tokens(text)
        let value = tokens.firstIndex(of: name).flatMap { $0 + 1 < tokens.count ? Double(tokens[$0 + 1]) : nil }
        #expect(value.map { Int(($0 * scale).rounded()) } == actual, "\(vector) expect.\(key) \(name)",
            sourceLocation: sourceLocation)
    }

    /// The key's text contains `fragment`.
    mutating func contains(_ key: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        covered.insert(key)
        guard let text = text(key, after: nil, sourceLocation: sourceLocation) else { return }
        #expect(text.contains(fragment), "\(vector) expect.\(key) lacks \(fragment)", sourceLocation: sourceLocation)
    }

    /// Every expect key of the vector was checked.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        let missed = Set(vector.expects.keys).subtracting(covered)
        #expect(missed.isEmpty, "\(vector): unchecked expect keys \(missed.sorted())", sourceLocation: sourceLocation)
    }
}
