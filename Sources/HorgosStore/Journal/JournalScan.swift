/// One pass over a journal segment's bytes: its valid entries and the byte ranges that are not valid
/// entries (damage, or a torn tail).
///
/// Used by the start-up recovery (which stops at the first damage) and by `horgosctl journal check`
/// and `salvage` (which go on past it). Past a damaged range the scan re-frames from the next byte
/// offset where a whole entry with a plausible LSN passes its length and CRC checks: a damaged length
/// field hides where the next entry starts, so every offset is tried (an LSN in range is tested before
/// the CRC, so the search costs little). A random byte run that passes a 32-bit CRC, carries an LSN in
/// range and a valid region is not a practical risk.
struct JournalSegmentScan {
    /// Bytes that are not a valid entry where one was expected.
    struct Damage: Sendable, Hashable {
        /// Byte offset of the first damaged byte (where an entry should have started).
        var offset: Int
        /// Bytes up to the next valid entry, or to the end of the file.
        var length: Int
        /// LSN of the last valid entry before the damage (the segment's first LSN - 1 when none).
        var afterLSN: UInt64
        /// LSN of the first valid entry after the damage in this segment; nil when none follows (a tail).
        var nextLSN: UInt64?
    }

    /// Whether the 16-byte header is there and carries the magic.
    var headerValid = false
    /// The header's flags (`JournalFormat.followsGapFlag`).
    var flags: UInt32 = 0
    var entries: [JournalFormat.DecodedEntry] = []
    var damage: [Damage] = []
    /// LSN of the last valid entry (the segment's first LSN - 1 when none).
    var lastLSN: UInt64
    /// Bytes of the file.
    var size: Int

    /// The largest jump in LSN the re-framing accepts between the entries around a damaged range.
    static let maxLSNJump: UInt64 = 100_000_000

    /// Scans `bytes` (a whole segment file) named by `firstLSN`. With `pastDamage` false the scan stops
    /// at the first damage (still telling whether a valid entry follows it); with true it goes on after
    /// each damaged range from the next valid entry. `keepEntries` false counts without keeping them.
    init(_ bytes: UnsafeRawBufferPointer, firstLSN: UInt64, pastDamage: Bool, keepEntries: Bool = true) {
        lastLSN = firstLSN &- 1
        size = bytes.count
        var offset = JournalFormat.segmentHeaderSize
        var expected = firstLSN
        if bytes.count >= JournalFormat.segmentHeaderSize,
            Array(UnsafeRawBufferPointer(rebasing: bytes[0..<8])) == JournalFormat.segmentMagic
        {
            headerValid = true
            flags = JournalFormat.segmentFlags(bytes)
        } else {
            // A damaged header: recovery stops here; a salvage looks for entries after it.
            guard pastDamage else { return }
            let next = Self.nextEntry(bytes, after: JournalFormat.segmentHeaderSize - 1, lsnAtLeast: firstLSN)
            damage.append(
                Damage(offset: 0, length: next?.offset ?? bytes.count, afterLSN: firstLSN &- 1, nextLSN: next?.lsn))
            guard let next else { return }
            offset = next.offset
            expected = next.lsn
        }
        while offset < bytes.count {
            if let entry = JournalFormat.decodeEntry(bytes, at: offset), entry.lsn == expected,
                JournalEntryKind(rawValue: entry.kind) != nil
            {
                if keepEntries { entries.append(entry) }
                lastLSN = entry.lsn
                offset += entry.length
                expected += 1
                continue
            }
            let next = Self.nextEntry(bytes, after: offset, lsnAtLeast: expected)
            damage.append(
                Damage(
                    offset: offset, length: (next?.offset ?? bytes.count) - offset, afterLSN: expected &- 1,
                    nextLSN: next?.lsn))
            guard pastDamage, let next else { return }
            offset = next.offset
            expected = next.lsn
        }
    }

    /// The first offset after `offset` where a valid entry with an LSN of at least `lsnAtLeast` (and
    /// less than `maxLSNJump` above it) starts.
    static func nextEntry(
        _ bytes: UnsafeRawBufferPointer, after offset: Int, lsnAtLeast: UInt64
    ) -> (offset: Int, lsn: UInt64)? {
        var candidate = offset + 1
        while candidate + JournalFormat.entryOverhead <= bytes.count {
            let found = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: candidate + 4, as: UInt64.self))
            if found >= lsnAtLeast && found - lsnAtLeast < maxLSNJump,
                let entry = JournalFormat.decodeEntry(bytes, at: candidate), entry.lsn == found,
                JournalEntryKind(rawValue: entry.kind) != nil
            {
                return (candidate, found)
            }
            candidate += 1
        }
        return nil
    }
}
