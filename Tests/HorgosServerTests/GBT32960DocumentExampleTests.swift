import Foundation
import HorgosGBT32960
import HorgosWire
import Testing

@testable import HorgosServer

/// Proto/GBT32960.md section 10 runs: every `gbt32960-session` block of the document is played
/// through the real frame decoder and session handler, and each answer must be the document's byte
/// for byte. The document and the code cannot drift apart.
@Suite struct GBT32960DocumentExampleTests {
    /// One example connection of the document.
    struct Example {
        var title: String
        var peer: GBT32960Peer?
        var serverTime: [UInt8] = []
        /// (what the unit sends, what the server answers: nil = nothing, the comment above it).
        var exchanges: [(request: [UInt8], answer: [UInt8]?, note: String)] = []
    }

    static func documentURL() -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Proto/GBT32960.md")
    }

    static func hex(_ text: Substring) -> [UInt8] {
        text.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    /// Every example block of the document, parsed (a line it does not understand fails the test).
    static func examples() throws -> [Example] {
        let text = try String(contentsOf: documentURL(), encoding: .utf8)
        var examples: [Example] = []
        var current: Example?
        var title = ""
        var note = ""
        var request: [UInt8] = []
        var answer: [UInt8]?
        var side: Character = " "
        func flush() {
            if side == "<" { current?.exchanges.append((request, answer, note)) }
            request = []
            answer = nil
            side = " "
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### ") { title = String(line.dropFirst(4)) }
            if line == "```gbt32960-session" {
                current = Example(title: title)
                continue
            }
            guard current != nil else { continue }
            if line == "```" {
                flush()
                examples.append(current!)
                current = nil
            } else if line.hasPrefix("peer ") {
                let words = line.split(separator: " ")
                switch words[1] {
                case "vehicle": current?.peer = .vehicle(VIN(String(words[2]))!, market: String(words[3]))
                case "platform": current?.peer = .platform(market: String(words[2]))
                default: Issue.record("unknown peer line: \(line)")
                }
            } else if line.hasPrefix("server_time ") {
                let parts = line.dropFirst(12).split(whereSeparator: { "- :".contains($0) }).map { Int($0)! }
                current?.serverTime = [UInt8(parts[0] - 2000)] + parts[1...].map { UInt8($0) }
            } else if line.hasPrefix("# ") {
                flush()
                note = String(line.dropFirst(2))
            } else if line.hasPrefix("> ") {
                if side == "<" { flush() }
                side = ">"
                request += hex(line.dropFirst(2))
            } else if line.hasPrefix("< ") {
                side = "<"
                if line != "< none" { answer = (answer ?? []) + hex(line.dropFirst(2)) }
            } else {
                Issue.record("a line the example format does not have: \(line)")
            }
        }
        return examples
    }

    @Test func theDocumentHasExamplesOfEveryCommandInBothEditions() throws {
        let examples = try Self.examples()
        #expect(examples.count >= 4)
        var seen = Set<[UInt8]>()
        for exchange in examples.flatMap(\.exchanges) where exchange.request.count >= 3 {
            seen.insert([exchange.request[0], exchange.request[2]])
        }
        for command: UInt8 in 1...8 { #expect(seen.contains([0x23, command]), "a 2016 example of 0x0\(command)") }
        for command: UInt8 in [1, 4, 7, 8] {
            #expect(seen.contains([0x24, command]), "a 2025 example of 0x0\(command)")
        }
    }

    @Test func everyExampleOfTheDocumentIsAnsweredAsItShows() throws {
        for example in try Self.examples() {
            let peer = try #require(example.peer, "\(example.title): no peer line")
            let connection = try GBT32960Connection(peer: peer, serverTimeMs: try beijingMs(example.serverTime))
            for exchange in example.exchanges {
                let answer = try connection.answer(exchange.request)
                #expect(answer == exchange.answer, "\(example.title): \(exchange.note)")
            }
        }
    }

    /// The example frames are frames: each request is delimited by its length and its BCC is right,
    /// except the two the document says are broken.
    @Test func theExampleFramesAreWellFormedWhereTheDocumentSaysSo() throws {
        let decoder = GBT32960Decoder()
        for example in try Self.examples() {
            for exchange in example.exchanges {
                let broken = exchange.note.contains("65535") || exchange.note.contains("wrong BCC")
                let decoded = exchange.request.withUnsafeBytes { raw in (try? decoder.decode(raw)) != nil }
                #expect(decoded != broken, "\(example.title): \(exchange.note)")
                guard let answer = exchange.answer else { continue }
                let answerDecodes = answer.withUnsafeBytes { raw in (try? decoder.decodeComplete(raw)) != nil }
                #expect(answerDecodes, "\(example.title): the answer to \(exchange.note)")
            }
        }
    }
}
