import HorgosWire

/// Bytes of one frame payload handed to the store without copying them.
///
/// The daemon conforms its buffer type (a NIO `ByteBuffer` slice) so HorgosStore needs no NIO;
/// `[UInt8]` conforms here. The bytes must stay unchanged until the submission's completion runs.
public protocol FrameBytes: Sendable {
    /// Calls `body` with the payload bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
    /// Number of payload bytes.
    var count: Int { get }
}

extension Array: FrameBytes where Element == UInt8 {}

/// What one committed submission became: records stored, records already stored (duplicates) and
/// records outside the time horizon (rejected, not stored).
///
/// Stored + duplicates + rejected = the records of the submission (1 for an EVENT). Duplicates count
/// as stored for the ACK; `rejected` goes into the ACK's `rejected_records`. A completion reports it
/// when the journal round holding the frame is durable: `rejected` is then exact (the time-horizon
/// rule is a pure function of the stored arrival time), while duplicates are found only when the
/// applier writes the rows, so the completion counts them in `stored` (the statistics count them).
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
