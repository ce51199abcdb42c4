import Foundation
import HorgosWire

/// One block of a Proto/vectors/*.txt file (format: Proto/vectors/README.md).
struct WireVector: CustomStringConvertible {
    var name: String
    var file: String
    var line: Int
    var notes: [String] = []
    var maxPayload: Int?
    var maxRecords: Int?
    var bytes: [UInt8] = []
    /// Expected frames in stream order, each as its header fields then its payload fields.
    var frames: [[WireField]] = []
    /// Expected error name (ErrorCode.name) after the listed frames; nil for a valid stream.
    var error: String?
    /// For INVALID_FIELD_VALUE: the field and record (-1: not in a record) the error names.
    var errorField: String?
    var errorRecord: Int?
    /// `unlisted_bytes:`: what the bytes hold that no listed value shows (reserved bytes set, a later
    /// version's record bytes), so an encoder from the listed values cannot rebuild them.
    var unlistedBytes: String?

    var description: String { "\(file):\(line) \(name)" }

    /// The `key: value` lines a block may hold.
    static let keys: Set<String> = [
        "note", "max_payload", "max_records", "hex", "error", "error_field", "error_record", "unlisted_bytes",
    ]

    var decoder: FrameDecoder {
        FrameDecoder(maxPayload: maxPayload ?? WireFormat.defaultMaxPayload, maxRecords: maxRecords)
    }
}

/// A line of a vector file that is not understood.
struct VectorFileError: Error, CustomStringConvertible {
    var file: String
    var line: Int
    var reason: String
    var description: String { "\(file):\(line): \(reason)" }
}

enum VectorFile {
    /// The repository's Proto/vectors directory, found from this source file's path.
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Proto/vectors")
    }

    /// Every vector of every `*.txt` file, read once per test process.
    static func loadAll() throws -> [WireVector] { try cached.get() }

    private static let cached = Result { try load() }

    /// Every vector of every `*.txt` file but `sessions.txt` (the session traces, read by HorgosSessionTraces);
    /// any other file but README.md is an error.
    static func load() throws -> [WireVector] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        var vectors: [WireVector] = []
        for name in names where name != "README.md" && name != "sessions.txt" {
            guard name.hasSuffix(".txt") else {
                throw VectorFileError(file: name, line: 0, reason: "not a vector file (*.txt) nor README.md")
            }
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            vectors += try parse(text, file: name)
        }
        return vectors
    }

    /// Bytes from hex digit pairs with optional blanks between pairs; nil for anything else.
    static func parseHex(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var high: UInt8?
        for c in text.utf8 {
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                if high != nil { return nil }
                continue
            default: return nil
            }
            if let h = high {
                bytes.append(h << 4 | digit)
                high = nil
            } else {
                high = digit
            }
        }
        return high == nil ? bytes : nil
    }

    /// Parses the text of one vector file; throws at the first line it does not understand.
    static func parse(_ text: String, file: String) throws -> [WireVector] {
        var vectors: [WireVector] = []
        var current: WireVector?
        var names = Set<String>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            func fail(_ reason: String) -> VectorFileError {
                VectorFileError(file: file, line: lineNumber, reason: reason)
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard var vector = current else {
                guard line.hasPrefix("vector ") else { throw fail("expected 'vector NAME', found '\(line)'") }
                let name = String(line.dropFirst("vector ".count))
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw fail("bad vector name '\(name)'")
                }
                guard names.insert(name).inserted else { throw fail("duplicate vector name '\(name)'") }
                current = WireVector(name: name, file: file, line: lineNumber)
                continue
            }
            current = nil  // `vector` is now the only reference: appends below do not copy the arrays
            if line == "end" {
                guard !vector.bytes.isEmpty else { throw fail("vector \(vector.name) has no hex bytes") }
                guard vector.error != nil || !vector.frames.isEmpty else {
                    throw fail("vector \(vector.name) expects neither a frame nor an error")
                }
                if vector.errorField != nil || vector.errorRecord != nil, vector.error != "INVALID_FIELD_VALUE" {
                    throw fail("error_field and error_record are for INVALID_FIELD_VALUE only")
                }
                vectors.append(vector)
                current = nil
                continue
            }
            let key = line.firstIndex(of: ":").map { String(line[..<$0]) }
            if line == "frame" {
                guard vector.error == nil else { throw fail("a frame after the error") }
                vector.frames.append([])
            } else if let key, let colon = line.firstIndex(of: ":"), WireVector.keys.contains(key) {
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                switch key {
                case "note": vector.notes.append(value)
                case "max_payload":
                    guard let number = Int(value), number >= 0 else { throw fail("bad max_payload") }
                    vector.maxPayload = number
                case "max_records":
                    guard let number = Int(value), number >= 0 else { throw fail("bad max_records") }
                    vector.maxRecords = number
                case "hex":
                    guard vector.frames.isEmpty, vector.error == nil else { throw fail("hex after the expectations") }
                    guard let bytes = parseHex(value) else { throw fail("bad hex digits") }
                    vector.bytes += bytes
                case "error":
                    guard ErrorCode(name: value) != nil else { throw fail("unknown error name '\(value)'") }
                    guard vector.error == nil else { throw fail("two error lines") }
                    vector.error = value
                case "error_field": vector.errorField = value
                case "unlisted_bytes": vector.unlistedBytes = value
                default:
                    guard let number = Int(value) else { throw fail("bad error_record") }
                    vector.errorRecord = number
                }
            } else if let eq = line.range(of: " = ") {
                guard !vector.frames.isEmpty else { throw fail("a field before any 'frame' line") }
                let name = String(line[..<eq.lowerBound])
                let value = String(line[eq.upperBound...])
                vector.frames[vector.frames.count - 1].append(WireField(name, value))
            } else {
                throw fail("line not understood: '\(line)'")
            }
            current = vector
        }
        if let vector = current {
            throw VectorFileError(file: file, line: vector.line, reason: "vector \(vector.name) has no 'end'")
        }
        return vectors
    }
}

/// What decoding a vector's bytes as one whole stream gives: the frames, then the error if any.
struct StreamOutcome: Equatable, CustomStringConvertible {
    var frames: [[WireField]] = []
    var error: FrameError?

    var description: String {
        "\(frames.count) frame(s)" + (error.map { ", then \($0.code.name) (\($0))" } ?? "")
    }

    /// Decodes `bytes` frame after frame through the UnsafeRawBufferPointer API; the stream ends
    /// after the last byte, so a partial frame there is TRUNCATED_FRAME.
    static func decode(_ bytes: [UInt8], with decoder: FrameDecoder) -> StreamOutcome {
        var outcome = StreamOutcome()
        bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let rest = UnsafeRawBufferPointer(rebasing: all[offset...])
                do throws(FrameError) {
                    let frame = try decoder.decodeComplete(rest)
                    let message = try frame.message(maxRecords: decoder.maxRecords)
                    outcome.frames.append(frame.header.fields + message.fields)
                    offset += frame.header.frameLength
                } catch {
                    outcome.error = error
                    return
                }
            }
        }
        return outcome
    }

    /// The same through the RawSpan API (`scan`, `withMessage`), as a NIO handler would call it.
    static func decodeSpan(_ bytes: [UInt8], with decoder: FrameDecoder) -> StreamOutcome {
        var outcome = StreamOutcome()
        var offset = 0
        while offset < bytes.count {
            let rest = Array(bytes[offset...])
            let span = rest.span.bytes
            do {
                guard case .frame = try decoder.scan(span) else {
                    let need = try decoder.scan(span)
                    guard case .needMore(let more) = need else { fatalError("unreachable") }
                    outcome.error = .truncatedFrame(have: rest.count, need: rest.count + more)
                    return outcome
                }
                let length = try decoder.withMessage(span) { header, message in
                    outcome.frames.append(header.fields + message.fields)
                    return header.frameLength
                }
                guard let length else { fatalError("scan found a frame that withMessage did not") }
                offset += length
            } catch let error as FrameError {
                outcome.error = error
                return outcome
            } catch {
                fatalError("unexpected error \(error)")
            }
        }
        return outcome
    }
}
