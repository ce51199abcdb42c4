import Foundation

/// One `[id]` block of Proto/gbt32960-vectors/gbt32960.txt (format: README.txt beside it).
struct GBTVector: CustomStringConvertible {
    var id: String
    var line: Int
    var provenance = ""
    var bytes: [UInt8] = []
    /// The `expect.KEY = TEXT` lines, by KEY.
    var expects: [String: String] = [:]
    var description: String { "gbt32960.txt:\(line) [\(id)]" }

    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Proto/gbt32960-vectors/gbt32960.txt")

    /// Every block of the file, in order; a line that is none of the known kinds is an error.
    static func load(_ url: URL = GBTVector.url) throws -> [GBTVector] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var vectors: [GBTVector] = []
        var lastExpect: String?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if raw.hasPrefix("  "), let key = lastExpect, !vectors.isEmpty {
                vectors[vectors.count - 1].expects[key, default: ""] += " " + line  // wrapped expect line
                continue
            }
            lastExpect = nil
            if line.hasPrefix("["), line.hasSuffix("]") {
                vectors.append(GBTVector(id: String(line.dropFirst().dropLast()), line: number + 1))
                continue
            }
            guard !vectors.isEmpty else { throw VectorLineError(line: number + 1, text: line) }
            if line.hasPrefix("hex:") {
                let hex = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
                guard let bytes = GBTVector.bytes(hex: hex) else { throw VectorLineError(line: number + 1, text: line) }
                vectors[vectors.count - 1].bytes = bytes
            } else if line.hasPrefix("expect") {
                // `expect.KEY = VALUE` or `expect = VALUE` (negative vectors).
                let parts = line.split(separator: "=", maxSplits: 1)
                var key = parts[0].trimmingCharacters(in: .whitespaces)
                key = key == "expect" ? "" : String(key.dropFirst("expect.".count))
                vectors[vectors.count - 1].expects[key] =
                    parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
                lastExpect = key
            } else if line.hasPrefix("provenance:") {
                vectors[vectors.count - 1].provenance = line.dropFirst(11).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("source:") || line.hasPrefix("note") || raw.hasPrefix("  ") {
                continue  // provenance text and wrapped note lines
            } else {
                throw VectorLineError(line: number + 1, text: line)
            }
        }
        return vectors
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            out.append(byte)
        }
        return out
    }
}

struct VectorLineError: Error, CustomStringConvertible {
    var line: Int
    var text: String
    var description: String { "gbt32960.txt:\(line): not understood: \(text)" }
}
