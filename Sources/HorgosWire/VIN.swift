/// A vehicle identification number: 17 characters of 0-9 A-H J-N P R-Z (ISO 3779, no I, O, Q).
///
/// Stored inline in three integers, so making, comparing and hashing one never touches the heap.
/// The check digit is not enforced: markets differ on whether it is used.
public struct VIN: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Bytes 0..<8, 8..<16 (little-endian) and 16.
    @usableFromInline let low: UInt64
    @usableFromInline let high: UInt64
    @usableFromInline let last: UInt8

    /// The number of characters in a VIN.
    public static let length = 17

    /// Whether an ASCII byte may appear in a VIN.
    @inlinable
    public static func isVINCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "A")...UInt8(ascii: "Z"):
            byte != UInt8(ascii: "I") && byte != UInt8(ascii: "O") && byte != UInt8(ascii: "Q")
        default: false
        }
    }

    /// Whether the 8 bytes of `word` are all VIN characters, 8 bytes at a time (SWAR).
    ///
    /// For bytes below 0x80, `(x | 0x80) - c` keeps bit 7 exactly when the byte is >= c and never
    /// borrows across bytes, and `(x ^ c) + 0x7F` sets it exactly when the byte differs from c.
    /// Bytes >= 0x80 make the whole word fail.
    @inlinable @inline(__always)
    static func allVINCharacters(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let low7 = ~high
        let set = x | high
        func atLeast(_ c: UInt64) -> UInt64 { (set &- c &* ones) & high }
        // With every byte below 0x80 (checked in the return), y + 0x7F sets bit 7 exactly when y != 0.
        func equal(_ c: UInt64) -> UInt64 { ~((x ^ (c &* ones)) &+ low7) & high }
        let digit = atLeast(0x30) & ~atLeast(0x3A)
        let upper = atLeast(0x41) & ~atLeast(0x5B)
        let excluded = equal(0x49) | equal(0x4F) | equal(0x51)  // I, O, Q
        return (digit | (upper & ~excluded)) == high && x & high == 0
    }

    /// Whether all 17 bytes at the start of `bytes` (which has at least 17) are VIN characters.
    @inlinable @inline(__always)
    static func allVINCharacters(_ bytes: UnsafeRawBufferPointer) -> Bool {
        allVINCharacters(bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            && allVINCharacters(bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            && isVINCharacter(bytes.load(fromByteOffset: 16, as: UInt8.self))
    }

    /// Reads and validates a VIN from the first 17 bytes of `bytes`; nil if any byte is not allowed.
    @inlinable
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= VIN.length, VIN.allVINCharacters(bytes) else { return nil }
        self.low = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        self.high = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        self.last = bytes[16]
    }

    /// Parses a VIN from text; nil unless it is exactly 17 allowed characters.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == VIN.length else { return nil }
        guard let vin = utf8.withUnsafeBytes({ VIN(bytes: $0) }) else { return nil }
        self = vin
    }

    /// Calls `body` with the 17 ASCII bytes of the VIN.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var storage = (low.littleEndian, high.littleEndian, last)
        return try Swift.withUnsafeBytes(of: &storage) { (raw) throws(E) -> R in
            // The tuple is laid out as 8 + 8 + 1 bytes: exactly the 17 characters in order.
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<VIN.length]))
        }
    }

    /// The VIN as text.
    public var description: String {
        withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    public static func < (lhs: VIN, rhs: VIN) -> Bool { lhs.description < rhs.description }
}
