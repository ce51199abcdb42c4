import Foundation
import HorgosWire
import Testing

/// Proto/vectors/ is the contract: these tests run every block of every file through the decoder.
@Suite struct VectorTests {
    @Test func everyVectorDecodesToItsListedValuesOrError() throws {
        let vectors = try VectorFile.loadAll()
        #expect(vectors.count >= 50)
        for vector in vectors {
            let outcome = StreamOutcome.decode(vector.bytes, with: vector.decoder)
            check(outcome, against: vector, path: "UnsafeRawBufferPointer")
        }
    }

    @Test func everyVectorDecodesTheSameThroughRawSpan() throws {
        for vector in try VectorFile.loadAll() {
            let outcome = StreamOutcome.decodeSpan(vector.bytes, with: vector.decoder)
            check(outcome, against: vector, path: "RawSpan")
        }
    }

    private func check(_ outcome: StreamOutcome, against vector: WireVector, path: String) {
        #expect(outcome.frames.count == vector.frames.count, "\(vector) via \(path): \(outcome)")
        for (index, (actual, expected)) in zip(outcome.frames, vector.frames).enumerated() where actual != expected {
            let difference = actual.difference(from: expected).map { change -> String in
                switch change {
                case .insert(_, let field, _): "decoded \(field)"
                case .remove(_, let field, _): "expected \(field)"
                }
            }
            Issue.record("\(vector) via \(path), frame \(index): \(difference.prefix(6).joined(separator: "; "))")
        }
        #expect(outcome.error?.code.name == vector.error, "\(vector) via \(path): \(outcome)")
        if let field = vector.errorField {
            guard case .invalidFieldValue(let actualField, let record) = outcome.error else {
                Issue.record("\(vector): expected INVALID_FIELD_VALUE of \(field), got \(outcome)")
                return
            }
            #expect(actualField == field, "\(vector)")
            #expect(record == vector.errorRecord ?? -1, "\(vector)")
        }
    }

    @Test func vectorsCoverEveryFrameTypeAndEveryParserError() throws {
        let vectors = try VectorFile.loadAll()
        let valid = vectors.filter { $0.error == nil }
        let invalid = vectors.filter { $0.error != nil }
        #expect(valid.count >= 25)
        #expect(invalid.count >= 25)
        let types = Set(valid.flatMap { $0.frames.compactMap { $0.first { $0.name == "type" }?.value } })
        #expect(types == Set(FrameType.allCases.map(\.name)))
        // Every error a parser can produce: the frame (0x01xx) and payload (0x02xx) groups.
        let parserErrors = Set(ErrorCode.allCases.filter { $0.rawValue < 0x0300 }.map(\.name))
        #expect(Set(invalid.compactMap(\.error)) == parserErrors)
        let names = vectors.map(\.name)
        #expect(Set(names).count == names.count, "vector names are unique across files")
        let maxRecords = try #require(valid.first { $0.name == "telemetry_max_records_1637" })
        #expect(maxRecords.frames.first?.contains(WireField("record_count", "1637")) == true)
    }

    @Test func committedVectorFilesAndCorpusMatchTheGenerator() throws {
        let corpus = VectorFile.directory.deletingLastPathComponent().appendingPathComponent("fuzz-corpus")
        let files = VectorGenerator.files()
        // The corpus seeds every vector: the generated cases and the hand-written ones.
        let handWritten = try VectorFile.loadAll().filter { $0.file == "handwritten.txt" }
        let cases = VectorGenerator.allCases().map { (name: $0.name, bytes: $0.bytes) }
            + handWritten.map { (name: $0.name, bytes: $0.bytes) }
        if ProcessInfo.processInfo.environment["HORGOS_WRITE_VECTORS"] == "1" {
            for (name, text) in files {
                let url = VectorFile.directory.appendingPathComponent(name)
                try text.write(to: url, atomically: true, encoding: .utf8)
            }
            try? FileManager.default.removeItem(at: corpus)
            try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
            for c in cases { try Data(c.bytes).write(to: corpus.appendingPathComponent(c.name + ".bin")) }
        }
        for (name, text) in files {
            let committed = try String(contentsOf: VectorFile.directory.appendingPathComponent(name), encoding: .utf8)
            #expect(committed == text, "Proto/vectors/\(name) differs from the generator's output")
        }
        let corpusFiles = try FileManager.default.contentsOfDirectory(atPath: corpus.path)
        #expect(Set(corpusFiles) == Set(cases.map { $0.name + ".bin" }))
        for c in cases {
            let data = try Data(contentsOf: corpus.appendingPathComponent(c.name + ".bin"))
            #expect(Array(data) == c.bytes, "Proto/fuzz-corpus/\(c.name).bin")
        }
    }

    @Test func aVectorFileWithAnUnknownLineIsRejected() {
        let text = "vector ok\nhex: 00\nerror: BAD_MAGIC\nend\nvector bad\nhex: 00\nspeed: 5\nerror: BAD_MAGIC\nend\n"
        #expect(throws: VectorFileError.self) { try VectorFile.parse(text, file: "t.txt") }
        #expect(throws: VectorFileError.self) { try VectorFile.parse("vector x\nhex: 0\nend\n", file: "t.txt") }
        #expect(throws: VectorFileError.self) {
            try VectorFile.parse("vector x\nhex: 00\nerror: NOT_AN_ERROR\nend\n", file: "t.txt")
        }
        #expect(throws: VectorFileError.self) {
            try VectorFile.parse("vector x\nhex: 00\nerror: BAD_MAGIC\n", file: "t")
        }
        let parsed = try? VectorFile.parse("vector ok\nhex: 48 47\nerror: TRUNCATED_FRAME\nend\n", file: "t.txt")
        #expect(parsed?.first?.bytes == [0x48, 0x47])
    }
}
