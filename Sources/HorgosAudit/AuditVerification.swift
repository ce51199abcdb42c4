import Foundation

/// The first problem `AuditLog.verify` found, naming the record and the line.
public struct AuditProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The families of damage.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A line is not a well-formed record, or its content does not match its hash.
        case changed
        /// A record is missing from the middle.
        case removed
        /// Records are out of order.
        case reordered
        /// The log ends early: an incomplete last line, or records missing at the end (the anchor says so).
        case truncated
        /// The previous-record hash does not match the record before (an edit that recomputed one hash).
        case brokenChain = "broken_chain"
        /// The anchor file is missing or names another hash for the last record.
        case anchor
    }

    /// What kind of damage.
    public var kind: Kind
    /// The record number concerned (the one expected at that place).
    public var record: UInt64
    /// The 1-based line of the log where it shows (nil when it is about the end or the anchor).
    public var line: Int?
    /// What an operator reads.
    public var message: String

    public var description: String { message }
}

/// What `AuditLog.verify` found: the records read, the last good hash, and the first problem (nil: the
/// log is intact).
public struct AuditVerification: Sendable, Hashable, Codable {
    /// The log verified.
    public var path: String
    /// Records read in order before the first problem (all of them when intact).
    public var records: UInt64
    /// The hash of the last good record (64 zeros for an empty log).
    public var lastHash: String
    /// The first problem, nil when the log is intact.
    public var problem: AuditProblem?
    /// True when no problem was found.
    public var intact: Bool { problem == nil }
}

extension AuditLog {
    /// The records of the log at `path` in file order (lines that are not records are skipped); empty
    /// when there is no log.
    public static func records(path: String) -> [AuditRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return Array(data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).compactMap {
            parse(Array($0))?.record
        }
    }

    /// Checks the log at `path` and its anchor: every line a record whose hash matches its bytes, numbered
    /// 1, 2, 3... without gaps, each carrying the previous record's hash, the file ending with a complete
    /// line, and the anchor naming the last record. Reports the first problem, naming the record and line.
    public static func verify(path: String) -> AuditVerification {
        var result = AuditVerification(path: path, records: 0, lastHash: AuditRecord.genesisHash, problem: nil)
        let bytes = FileManager.default.contents(atPath: path).map(Array.init) ?? []
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        // A complete log ends with a newline: the last split piece is then empty.
        let incompleteTail = lines.last.map { !$0.isEmpty } ?? false
        let tail = lines.removeLast()
        let parsed = lines.map(parse)
        var expected: UInt64 = 1
        for (index, entry) in parsed.enumerated() {
            let line = index + 1
            func fail(_ kind: AuditProblem.Kind, _ message: String) -> AuditVerification {
                result.problem = AuditProblem(kind: kind, record: expected, line: line, message: message)
                return result
            }
            guard let entry else {
                return fail(
                    .changed,
                    "record \(expected) (line \(line)) is not a well-formed audit record: it was changed or damaged")
            }
            guard entry.hashMatches else {
                return fail(
                    .changed,
                    "record \(entry.record.seq) (line \(line)) does not match its hash: its content was changed "
                        + "after it was written")
            }
            let seq = entry.record.seq
            if seq != expected {
                let laterHoldsExpected = parsed[(index + 1)...].contains { $0?.record.seq == expected }
                if laterHoldsExpected || seq < expected {
                    return fail(
                        .reordered,
                        "line \(line) holds record \(seq) where record \(expected) belongs: records were reordered "
                            + "(moved or swapped)")
                }
                return fail(
                    .removed,
                    "record \(expected) is missing: line \(line) holds record \(seq) after record \(expected - 1) "
                        + "(records \(expected)...\(seq - 1) were removed)")
            }
            guard entry.record.prev == result.lastHash else {
                return fail(
                    .brokenChain,
                    "record \(seq) (line \(line)) does not carry the hash of record \(seq - 1): a record before it "
                        + "was changed, removed or reordered")
            }
            result.records = seq
            result.lastHash = entry.record.hash ?? ""
            expected += 1
        }
        if incompleteTail {
            result.problem = AuditProblem(
                kind: .truncated, record: expected, line: lines.count + 1,
                message: "record \(expected) (line \(lines.count + 1), the last) is incomplete (\(tail.count) bytes, no "
                    + "end of line): the log was truncated, or a crash cut its last append")
            return result
        }
        let anchor = readAnchor(path + ".head")
        if let anchor {
            if anchor.seq > result.records {
                result.problem = AuditProblem(
                    kind: .truncated, record: result.records + 1, line: nil,
                    message: "the log ends at record \(result.records) but its anchor (\(path).head) names record "
                        + "\(anchor.seq): records \(result.records + 1)...\(anchor.seq) were removed from its end")
            } else if anchor.seq == result.records && anchor.hash != result.lastHash {
                result.problem = AuditProblem(
                    kind: .anchor, record: anchor.seq, line: nil,
                    message: "record \(anchor.seq) differs from the one its anchor (\(path).head) names: the last "
                        + "record was replaced")
            }
            // anchor.seq < records: a crash between an append and its anchor's update; the next append
            // moves the anchor on. The records themselves are checked above.
        } else if result.records > 0 {
            result.problem = AuditProblem(
                kind: .anchor, record: result.records, line: nil,
                message: "the anchor \(path).head is missing: records removed from the end could not be detected")
        }
        return result
    }
}
