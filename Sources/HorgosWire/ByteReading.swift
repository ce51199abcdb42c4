/// Little-endian loads at fixed offsets; the caller has checked the bounds.
extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    func u8(_ offset: Int) -> UInt8 { self[offset] }
    @inlinable @inline(__always)
    func i8(_ offset: Int) -> Int8 { Int8(bitPattern: self[offset]) }
    @inlinable @inline(__always)
    func u16(_ offset: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    @inlinable @inline(__always)
    func i16(_ offset: Int) -> Int16 { Int16(littleEndian: loadUnaligned(fromByteOffset: offset, as: Int16.self)) }
    @inlinable @inline(__always)
    func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    @inlinable @inline(__always)
    func i32(_ offset: Int) -> Int32 { Int32(littleEndian: loadUnaligned(fromByteOffset: offset, as: Int32.self)) }
    @inlinable @inline(__always)
    func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    @inlinable @inline(__always)
    func i64(_ offset: Int) -> Int64 { Int64(littleEndian: loadUnaligned(fromByteOffset: offset, as: Int64.self)) }
}
