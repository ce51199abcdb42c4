import HorgosWire

/// What a journal entry's payload is, and so which row writer the applier calls for it.
///
/// The byte is stored in every entry (offset 12). Adding a kind is one case here, its shape check in
/// `JournalEntryKind.rows(_:)`, its time-horizon rule in `rejected(_:horizon:arrivalMs:)` and its row
/// writer in `RegionEngine.apply(_:payload:arrivalMs:)`. Kinds 5 and up are free (issue 21 takes the next).
public enum JournalEntryKind: UInt8, Sendable, Hashable, CaseIterable {
    /// A native TELEMETRY payload (Proto/): VIN, base time, fixed-size records.
    case telemetry = 1
    /// A native EVENT payload: VIN, time, alarm level and flags, DTCs.
    case event = 2
    /// A GB/T 32960 realtime or reissue frame as a `GBT32960Entry` (time base + the whole frame).
    case gbt32960 = 3
    /// An erasure tombstone: the payload is one VIN (17 ASCII bytes), and applying it deletes every row
    /// of that vehicle in the region (`RegionEngine.applyErase`). Entries before it in LSN order are
    /// erased with it, entries after it are stored as usual; a replay applies them in the same order, so
    /// erased rows never come back. The reason and the operator are in the audit log, not here.
    case erase = 4

    /// The rows a well-formed payload of this kind holds (records, or 1 for an event); nil when its
    /// lengths do not add up.
    func rows(_ payload: UnsafeRawBufferPointer) -> Int? {
        switch self {
        case .telemetry: PayloadShape.telemetryRecords(payload)
        case .event: PayloadShape.isEvent(payload) ? 1 : nil
        case .gbt32960: GBT32960Entry.hasShape(payload) ? 1 : nil
        case .erase: payload.count == VIN.length && VIN(bytes: payload) != nil ? 1 : nil
        }
    }

    /// Records of a shape-checked payload outside the time horizon at its arrival time: they are
    /// reported in the ACK's `rejected_records` and never stored. A pure function of the payload and
    /// the arrival time stored in the entry, so the ACK (at submission) and the applier (possibly in a
    /// replay days later) agree.
    func rejected(_ payload: UnsafeRawBufferPointer, horizon: TimeHorizon, arrivalMs: Int64) -> Int {
        switch self {
        case .telemetry:
            let base = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: Int64.self))
            let size = Int(payload[25])
            let count = Int(UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
            var rejected = 0
            for index in 0..<count {
                let offset = WireFormat.telemetryHeaderSize + index * size
                let delta = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                // The same arithmetic as `TelemetryRecordView.timestampMs` (wrapping: a hostile base never traps).
                if !horizon.contains(base &+ Int64(delta), nowMs: arrivalMs) { rejected += 1 }
            }
            return rejected
        case .event:
            let time = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: Int64.self))
            return horizon.contains(time, nowMs: arrivalMs) ? 0 : 1
        case .gbt32960:
            // An entry that does not decode is rejected too (the applier skips it the same way).
            guard let time = GBT32960Entry.decode(payload)?.timestampMs else { return 1 }
            return horizon.contains(time, nowMs: arrivalMs) ? 0 : 1
        case .erase:
            return 0
        }
    }
}

/// The on-disk layout of the ingest journal (`<state>/journal/`). All integers little-endian.
///
/// A segment file is named by the LSN of its first entry, 20 decimal digits: `00000000000000000001.log`.
/// It starts with a 16-byte header: the ASCII magic `HORGOSJ1`, a `u32` format version (1) and a
/// `u32` reserved (0). Entries follow back to back, each:
///
/// ```
/// offset size  field
///  0      4    entry length E in bytes, from offset 0 to the end of the CRC (E >= 32)
///  4      8    LSN (log sequence number; +1 per entry across all segments, first 1)
/// 12      1    kind (JournalEntryKind: 1 TELEMETRY, 2 EVENT, 3 GB/T 32960, 4 ERASE)
/// 13      1    flags (0; readers must refuse other values)
/// 14      2    region, ISO 3166-1 alpha-2 ASCII ("AE")
/// 16      8    arrival time, ms since the epoch (UTC, server clock): the time-horizon rule's "now"
/// 24      2    submission context length C (0 for native frames; the VIN is in the payload)
/// 26      C    submission context (kind-specific)
/// 26+C    P    the frame payload exactly as received (P = E - 30 - C)
/// E-4     4    CRC-32C (Castagnoli) of bytes 0 ..< E-4
/// ```
///
/// The LSNs of a segment are consecutive and the first is in its name. A reader stops at the first
/// entry whose length or CRC is wrong: at the tail of the newest segment that is a torn write (cut
/// off); anywhere else it is damage (`StoreError.Kind.journalCorrupt`).
public enum JournalFormat {
    public static let segmentMagic: [UInt8] = Array("HORGOSJ1".utf8)
    public static let version: UInt32 = 1
    public static let segmentHeaderSize = 16
    /// Fixed bytes of an entry around its context and payload.
    public static let entryOverhead = 30
    public static let entryHeaderSize = 26
    /// The largest payload an entry may hold (the wire protocol's payloads are far smaller).
    public static let maxPayloadBytes = 16 << 20

    static func segmentFileName(firstLSN: UInt64) -> String {
        let digits = String(firstLSN)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    static func firstLSN(segmentFileName name: String) -> UInt64? {
        guard name.hasSuffix(".log"), name.count == 24 else { return nil }
        return UInt64(name.prefix(20))
    }

    /// Appends one entry to `buffer`.
    static func appendEntry(
        to buffer: inout [UInt8], lsn: UInt64, kind: UInt8, region: Region, arrivalMs: Int64,
        context: [UInt8], payload: UnsafeRawBufferPointer
    ) {
        let start = buffer.count
        let length = entryOverhead + context.count + payload.count
        appendLE(&buffer, UInt32(length))
        appendLE(&buffer, lsn)
        buffer.append(kind)
        buffer.append(0)
        buffer.append(contentsOf: region.code.utf8)
        appendLE(&buffer, UInt64(bitPattern: arrivalMs))
        appendLE(&buffer, UInt16(context.count))
        buffer.append(contentsOf: context)
        buffer.append(contentsOf: payload)
        let crc = buffer.withUnsafeBytes { all in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[start..<(start + length - 4)]))
        }
        appendLE(&buffer, crc)
    }

    static func appendLE<T: FixedWidthInteger>(_ buffer: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    /// The segment header bytes.
    static var segmentHeader: [UInt8] {
        var header = segmentMagic
        appendLE(&header, version)
        appendLE(&header, UInt32(0))
        return header
    }

    /// The entry starting at `offset` of `bytes` if its length and CRC are right.
    static func decodeEntry(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> DecodedEntry? {
        guard bytes.count - offset >= entryOverhead else { return nil }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        guard length >= entryOverhead, length <= bytes.count - offset,
            length <= entryOverhead + 65_535 + maxPayloadBytes
        else { return nil }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + length - 4, as: UInt32.self))
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length - 4)])) == stored
        else { return nil }
        let contextLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt16.self)))
        guard entryOverhead + contextLength <= length, bytes[offset + 13] == 0,
            let region = Region(String(decoding: bytes[(offset + 14)..<(offset + 16)], as: UTF8.self))
        else { return nil }
        return DecodedEntry(
            length: length,
            lsn: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self)),
            kind: bytes[offset + 12], region: region,
            arrivalMs: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 16, as: Int64.self)),
            payloadOffset: offset + entryHeaderSize + contextLength,
            payloadCount: length - entryOverhead - contextLength)
    }

    /// The fields of one entry read back from a segment.
    struct DecodedEntry {
        let length: Int
        let lsn: UInt64
        let kind: UInt8
        let region: Region
        let arrivalMs: Int64
        let payloadOffset: Int
        let payloadCount: Int
    }
}
