import Foundation
import HorgosWire
import Testing

/// Vectors made without Horgos's encoder are the authority over the generated ones: a symmetric
/// offset bug in `FrameEncoder` and `FrameDecoder` would regenerate matching vectors, but it cannot
/// change `handwritten.txt` or the worked example printed in PROTOCOL.md.
@Suite struct HandWrittenVectorTests {
    /// The hex block and the field table of PROTOCOL.md section 8.
    struct WorkedExample {
        var bytes: [UInt8] = []
        /// (offset, bytes as printed, field name); `…` rows keep only their first and last bytes.
        var rows: [(offset: Int, bytes: [UInt8], elided: Bool, field: String)] = []
    }

    static func workedExample() throws -> WorkedExample {
        let url = VectorFile.directory.deletingLastPathComponent().appendingPathComponent("PROTOCOL.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        let section =
            try #require(text.components(separatedBy: "## 8. Worked example").dropFirst().first)
            .components(separatedBy: "\n## ").first ?? ""
        var example = WorkedExample()
        var inCode = false
        for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                inCode.toggle()
                continue
            }
            if inCode {
                example.bytes += line.split(separator: " ").compactMap { UInt8($0, radix: 16) }
            } else if line.hasPrefix("| "),
                let offset = Int(line.split(separator: "|")[0].trimmingCharacters(in: .whitespaces))
            {
                let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                let printed = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
                let bytes = printed.split(separator: " ").compactMap { UInt8($0, radix: 16) }
                example.rows.append((offset, bytes, printed.contains("…"), cells[2]))
            }
        }
        return example
    }

    @Test func theWorkedExampleOfSection8IsTheHandWrittenVectorAndItsTableReadsItsBytes() throws {
        let example = try Self.workedExample()
        #expect(example.bytes.count == 84)
        #expect(example.rows.count == 27, "every field of the frame has a row")
        for row in example.rows {
            let length = row.elided && row.field == "vin" ? 17 : row.bytes.count
            let end = row.offset + length
            let actual = Array(example.bytes[row.offset..<min(end, example.bytes.count)])
            if row.elided {
                #expect(Array(actual.prefix(2)) == Array(row.bytes.prefix(2)), "row \(row.field)")
                #expect(Array(actual.suffix(2)) == Array(row.bytes.suffix(2)), "row \(row.field)")
            } else {
                #expect(actual == row.bytes, "row \(row.field) at \(row.offset)")
            }
        }
        // The rows tile the frame: each starts where the previous ended.
        var next = 0
        for row in example.rows {
            #expect(row.offset == next, "row \(row.field)")
            next = row.offset + (row.field == "vin" ? 17 : row.bytes.count)
        }
        #expect(next == 84)
        let crc = Array(example.bytes[0..<80]).withUnsafeBytes { CRC32C.checksum($0) }
        #expect(crc == 0xFAC3_A5B8)
        let vectors = try VectorFile.loadAll()
        let hand = try #require(vectors.first { $0.name == "hand_telemetry_one_record" })
        let generated = try #require(vectors.first { $0.name == "telemetry_one_record" })
        #expect(hand.bytes == example.bytes, "PROTOCOL.md section 8 and handwritten.txt agree")
        #expect(generated.bytes == example.bytes, "the generator reproduces the worked example")
        #expect(generated.frames == hand.frames)
    }

    @Test func generatedVectorsWithTheValuesOfAHandWrittenOneHaveItsBytes() throws {
        let vectors = try VectorFile.loadAll()
        let hand = vectors.filter { $0.file == "handwritten.txt" }
        let generated = vectors.filter { $0.file != "handwritten.txt" }
        #expect(hand.count >= 10)
        var pairs = 0
        for vector in hand {
            // A vector with `unlisted_bytes:` holds bytes no listed value shows (reserved bytes set): not a twin.
            for other in generated
            where other.frames == vector.frames && other.error == vector.error && other.unlistedBytes == nil {
                pairs += 1
                #expect(other.bytes == vector.bytes, "\(other) has the values of \(vector) but other bytes")
            }
        }
        #expect(pairs >= 2, "the hand-written set overlaps the generated one")
        // telemetry_reserved_nonzero lists exactly the values of hand_telemetry_one_record: its line says why
        // its bytes differ, and that line is what the comparison skips.
        let reserved = try #require(generated.first { $0.name == "telemetry_reserved_nonzero" })
        let oneRecord = try #require(vectors.first { $0.name == "hand_telemetry_one_record" })
        #expect(reserved.frames == oneRecord.frames && reserved.bytes != oneRecord.bytes)
        #expect(reserved.unlistedBytes != nil)
    }

    @Test func theEncoderWritesTheHandWrittenControlFramesByteForByte() throws {
        let vectors = try VectorFile.loadAll()
        func bytes(_ name: String) throws -> [UInt8] { try #require(vectors.first { $0.name == name }).bytes }
        var out: [UInt8] = []
        FrameEncoder.appendHello(
            Hello(
                clientKind: .vehicle, clientTimeMs: 1_700_000_000_000, softwareVersion: "tbox 2.0", protocolMinor: 1),
            to: &out)
        #expect(out == (try bytes("hand_hello_1_1")))
        out = []
        FrameEncoder.appendWelcome(
            Welcome(
                serverTimeMs: 1_700_000_000_000, maxPayload: 65_536, ackWindow: 64, heartbeatSeconds: 30,
                idleTimeoutSeconds: 90, maxRecords: 1637,
                horizon: AnnouncedHorizon(pastSeconds: 604_800, futureSeconds: 86_400)),
            sequence: 1, to: &out)
        #expect(out == (try bytes("hand_welcome_1_1")))
        out = []
        FrameEncoder.appendAck(Ack(sequence: 2, rejectedRecords: 3), sequence: 2, to: &out)
        #expect(out == (try bytes("hand_ack")))
        out = []
        FrameEncoder.appendError(
            ErrorMessage(code: .sequenceGap, sequence: 5, reason: "expected sequence 1, got 5"),
            sequence: 3, to: &out)
        #expect(out == (try bytes("hand_error_sequence_gap")))
    }
}
