/// Big-endian loads at fixed offsets (GB/T 32960 is big-endian); the caller has checked the bounds.
extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    func byte(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }
    @inlinable @inline(__always)
    func word(_ offset: Int) -> UInt16 { UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    @inlinable @inline(__always)
    func dword(_ offset: Int) -> UInt32 { UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }

    /// The standard's special values: BYTE 0xFE/0xFF, WORD 0xFFFE/0xFFFF, DWORD 0xFFFFFFFE/0xFFFFFFFF
    /// ("abnormal", "invalid") read as nil: not available, never a number.
    @inlinable @inline(__always)
    func byteValue(_ offset: Int) -> UInt8? {
        let v = byte(offset)
        return v >= 0xFE ? nil : v
    }
    @inlinable @inline(__always)
    func wordValue(_ offset: Int) -> UInt16? {
        let v = word(offset)
        return v >= 0xFFFE ? nil : v
    }
    @inlinable @inline(__always)
    func dwordValue(_ offset: Int) -> UInt32? {
        let v = dword(offset)
        return v >= 0xFFFF_FFFE ? nil : v
    }

    /// The value of a field whose valid raw values are `range` (GB/T 32960's "有效值范围"): nil for
    /// a marker and for a value outside the range, which is never clamped into it.
    @inlinable @inline(__always)
    func byteValue(_ offset: Int, _ range: ClosedRange<UInt8>) -> UInt8? {
        let v = byte(offset)
        return range.contains(v) ? v : nil
    }
    @inlinable @inline(__always)
    func wordValue(_ offset: Int, _ range: ClosedRange<UInt16>) -> UInt16? {
        let v = word(offset)
        return range.contains(v) ? v : nil
    }
    @inlinable @inline(__always)
    func dwordValue(_ offset: Int, _ range: ClosedRange<UInt32>) -> UInt32? {
        let v = dword(offset)
        return range.contains(v) ? v : nil
    }

    /// A sub-range that starts at `offset`, `count` bytes long (bounds checked by the caller).
    @inlinable @inline(__always)
    func slice(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress.unsafelyUnwrapped + offset, count: count)
    }
}

/// Whether a raw special value means "abnormal" (0xFE…) as opposed to "invalid" (0xFF…).
public enum GBT32960SpecialValue {
    /// Whether the raw BYTE, WORD or DWORD value is one of the two markers.
    @inlinable
    public static func isMarker<T: FixedWidthInteger & UnsignedInteger>(_ raw: T) -> Bool { raw >= T.max - 1 }
}
