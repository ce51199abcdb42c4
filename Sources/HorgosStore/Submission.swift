import HorgosWire

/// Bytes of one frame payload handed to the store without copying them.
///
/// The daemon conforms its buffer type (a NIO `ByteBuffer` slice) so HorgosStore needs no NIO;
/// `[UInt8]` conforms here. The bytes must stay unchanged until the submission's completion runs.
public protocol FrameBytes: Sendable {
    /// Calls `body` with the payload bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
    /// Number of payload bytes (counted against `RegionWriter.queuedBytes`).
    var count: Int { get }
}

extension Array: FrameBytes where Element == UInt8 {}

/// What one committed submission became: records stored, records already stored (duplicates) and
/// records outside the time horizon (rejected, not stored).
///
/// Stored + duplicates + rejected = the records of the submission (1 for an EVENT). Duplicates count
/// as stored for the ACK; `rejected` goes into the ACK's `rejected_records`.
public struct CommitOutcome: Sendable, Hashable {
    public var stored: Int
    public var duplicates: Int
    public var rejected: Int

    public init(stored: Int = 0, duplicates: Int = 0, rejected: Int = 0) {
        self.stored = stored
        self.duplicates = duplicates
        self.rejected = rejected
    }
}

/// One queued unit of work for a region writer (a class: it moves through the queue and the
/// transaction's list, and a reference is one retain where the existential and closure were several).
final class Submission: Sendable {
    /// `gbt32960`: a `GBT32960Entry` (one realtime or reissue frame; RegionEngine+GBT32960.swift).
    enum Kind: Sendable { case telemetry, event, gbt32960 }
    let kind: Kind
    let bytes: any FrameBytes
    /// Records (telemetry) or 1 (event): what the commitMaxRows limit counts.
    let rows: Int
    /// Payload bytes, counted in `queuedBytes`.
    let byteCount: Int
    let completion: @Sendable (CommitOutcome) -> Void
    /// Monotonic ns when it was submitted: the group-commit window runs from the oldest's.
    let submittedNs: UInt64

    init(kind: Kind, bytes: any FrameBytes, rows: Int, completion: @escaping @Sendable (CommitOutcome) -> Void) {
        self.submittedNs = StoreClock.monotonicNs()
        self.kind = kind
        self.bytes = bytes
        self.rows = rows
        self.byteCount = bytes.count
        self.completion = completion
    }
}

/// Cheap structural checks of payloads the daemon has already validated with HorgosWire's views
/// (lengths only: the store reads fields at fixed offsets and must never read past the end).
enum PayloadShape {
    /// The record count of a well-formed TELEMETRY payload, nil otherwise.
    static func telemetryRecords(_ p: UnsafeRawBufferPointer) -> Int? {
        guard p.count >= WireFormat.telemetryHeaderSize else { return nil }
        let size = Int(p[25])
        let count = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
        guard size >= WireFormat.recordSizeV1, count >= 1,
            p.count == WireFormat.telemetryHeaderSize + count * size,
            VIN(bytes: UnsafeRawBufferPointer(rebasing: p[8..<25])) != nil
        else { return nil }
        return count
    }

    /// Whether an EVENT payload's lengths add up.
    static func isEvent(_ p: UnsafeRawBufferPointer) -> Bool {
        guard p.count >= WireFormat.eventHeaderSize else { return false }
        let count = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 30, as: UInt16.self)))
        return p.count == WireFormat.eventHeaderSize + count * WireFormat.dtcSize
            && VIN(bytes: UnsafeRawBufferPointer(rebasing: p[8..<25])) != nil
    }
}
