import HorgosWire
import Synchronization

/// Something besides the appliers that still needs journal entries: the stream publisher (issue 20)
/// registers one so that a segment is deleted only once every entry in it is published, and so that a
/// region whose entries are too far from being published gets backpressure.
///
/// Called from the journal writer (`admits`, once per held or new frame) and from retention (`heldLSN`):
/// both must be cheap and must not block (an atomic load).
public protocol JournalRetentionHold: AnyObject, Sendable {
    /// Every entry with an LSN above this is still needed: a segment whose last entry is above it stays.
    var heldLSN: UInt64 { get }
    /// Whether a new frame of `region` may enter the journal now; false holds it (and its ACK) back in
    /// order, as the region's unapplied-bytes bound does, until the hold calls `ShardStore.wakeJournal()`
    /// or the writer's next turn (at most 20 ms later) finds it admissible.
    func admits(_ region: Region) -> Bool
}

/// One durable journal entry's acknowledgement, held by a gate.
public struct GatedCompletion: Sendable {
    /// The entry's LSN.
    public let lsn: UInt64
    /// The entry's region.
    public let region: Region
    /// Runs the submission's completion (the caller's ACK); call it exactly once, from any thread.
    public let run: @Sendable () -> Void
}

/// What `store.durability: replicated` puts between a durable journal round and its ACKs: the round's
/// completions, in LSN order, go to the gate, which runs each once its entry may be acknowledged (the
/// stream has it). Without a gate (`disk`, `process`) completions run at once, as before.
///
/// `hold` is called on the journal writer thread once per round and must return quickly.
public protocol JournalAcknowledgementGate: AnyObject, Sendable {
    func hold(_ completions: [GatedCompletion])
}

/// One durable journal entry as the reader yields it: its header fields and views of its context and
/// payload bytes in the segment's mapping (valid while this value is alive: it keeps the segment).
public struct JournalRecord: @unchecked Sendable {
    let segment: JournalSegment
    public let lsn: UInt64
    /// The entry kind's raw byte (`JournalEntryKind`; a newer node may write kinds this one lacks).
    public let kind: UInt8
    public let region: Region
    public let arrivalMs: Int64
    /// Bytes of the whole entry in the journal.
    public let entryBytes: Int
    let contextOffset: Int
    let contextCount: Int
    let payloadOffset: Int
    let payloadCount: Int

    /// The submission context (empty for frames received from units; `FollowedOrigin` for entries a
    /// follower copied from the stream).
    public var context: UnsafeRawBufferPointer { segment.bytes(contextOffset, contextCount) }
    /// The payload exactly as submitted.
    public var payload: UnsafeRawBufferPointer { segment.bytes(payloadOffset, payloadCount) }
    /// Where the entry came from when a follower copied it from the stream; nil for local frames.
    public var followedOrigin: FollowedOrigin? { FollowedOrigin(context: context) }
}

/// The submission context of an entry a follower copied from the stream (journal entry context, see
/// `JournalFormat`): the node that received the frame and its LSN there. The publisher never publishes
/// such an entry again.
///
/// ```
///   0x46 ('F') | version u8 (1) | origin LSN u64 LE | node id length u8 | node id (ASCII)
/// ```
public struct FollowedOrigin: Sendable, Hashable {
    public static let tag: UInt8 = 0x46
    public var node: String
    public var lsn: UInt64

    public init(node: String, lsn: UInt64) {
        self.node = node
        self.lsn = lsn
    }

    /// Reads a context; nil unless it is a followed-entry context.
    public init?(context: UnsafeRawBufferPointer) {
        guard context.count >= 11, context[0] == Self.tag, context[1] == 1 else { return nil }
        let length = Int(context[10])
        guard context.count == 11 + length else { return nil }
        lsn = UInt64(littleEndian: context.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
        node = String(decoding: UnsafeRawBufferPointer(rebasing: context[11...]), as: UTF8.self)
    }

    /// The context bytes.
    public var context: [UInt8] {
        var bytes: [UInt8] = [Self.tag, 1]
        withUnsafeBytes(of: lsn.littleEndian) { bytes.append(contentsOf: $0) }
        let id = Array(node.utf8.prefix(255))
        bytes.append(UInt8(id.count))
        bytes.append(contentsOf: id)
        return bytes
    }
}

/// Reads durable journal entries in LSN order after a given LSN, from the segments found at start and
/// those written since (issue 20's publisher). Entries become visible once their round is durable (the
/// same moment the appliers get them). Not thread-safe: one reader per consumer thread.
///
/// Limits: the reader keeps the segment it reads alive; it can only read what retention kept, so
/// whoever reads must register a `JournalRetentionHold` at or below its position.
public final class JournalReader {
    private let journal: Journal
    private var segment: JournalSegment?
    private var offset = 0
    /// The LSN of the next entry to yield.
    public private(set) var nextLSN: UInt64
    /// Entries that retention had already deleted when the reader was positioned (0 normally; more
    /// when the reader starts below the oldest segment, e.g. a stream configured after data was written).
    public private(set) var skippedBeforeStart: UInt64 = 0

    init(journal: Journal, after lsn: UInt64) {
        self.journal = journal
        nextLSN = lsn &+ 1
    }

    /// The LSN of the last durable entry now.
    public var durableLSN: UInt64 { journal.deliveredLSN.load(ordering: .acquiring) }

    /// The next durable entry, or nil when every durable entry was read.
    public func next() -> JournalRecord? {
        let durable = journal.deliveredLSN.load(ordering: .acquiring)
        guard nextLSN <= durable else { return nil }
        guard let segment = position() else { return nil }
        // The whole mapping: only the durable entry at `offset` is read (its length and CRC checked).
        let bytes = segment.bytes(0, segment.capacity)
        guard let entry = JournalFormat.decodeEntry(bytes, at: offset), entry.lsn == nextLSN else {
            // Never for a durable entry (its bytes were written before the round was durable); a torn
            // view means the segment list changed under the reader: start over from the list.
            self.segment = nil
            return nil
        }
        let record = JournalRecord(
            segment: segment, lsn: entry.lsn, kind: entry.kind, region: entry.region, arrivalMs: entry.arrivalMs,
            entryBytes: entry.length, contextOffset: offset + JournalFormat.entryHeaderSize,
            contextCount: entry.payloadOffset - offset - JournalFormat.entryHeaderSize,
            payloadOffset: entry.payloadOffset, payloadCount: entry.payloadCount)
        offset += entry.length
        nextLSN += 1
        return record
    }

    /// The segment holding `nextLSN`, with `offset` at its entry (found by walking the segment's
    /// entry lengths once, when the reader enters a segment).
    private func position() -> JournalSegment? {
        if let segment, nextLSN <= segment.lastLSN.load(ordering: .relaxed) { return segment }
        let list = journal.liveSegments
        guard let first = list.first else { return nil }
        if nextLSN < first.firstLSN {
            skippedBeforeStart += first.firstLSN - nextLSN
            nextLSN = first.firstLSN
        }
        guard
            let found = list.last(where: {
                $0.firstLSN <= nextLSN && nextLSN <= $0.lastLSN.load(ordering: .relaxed)
            })
        else { return nil }
        var walk = JournalFormat.segmentHeaderSize
        var lsn = found.firstLSN
        while lsn < nextLSN {
            let length = Int(UInt32(littleEndian: found.bytes(walk, 4).loadUnaligned(as: UInt32.self)))
            guard length >= JournalFormat.entryOverhead else { return nil }
            walk += length
            lsn += 1
        }
        segment = found
        offset = walk
        return found
    }
}
