import HorgosWire

/// The 17 bytes of a frame's VIN field, kept as sent (a platform login carries its platform code
/// there, and some units pad short identifiers with zero bytes).
///
/// Stored inline like `VIN`, so copying a header never touches the heap.
public struct GBT32960VINField: Sendable, Hashable, CustomStringConvertible {
    @usableFromInline let low: UInt64
    @usableFromInline let high: UInt64
    @usableFromInline let last: UInt8

    /// The first 17 bytes of `bytes` (which holds at least 17).
    @inlinable
    public init(bytes: UnsafeRawBufferPointer) {
        low = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        high = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        last = bytes.byte(16)
    }

    /// A field holding a VIN.
    public init(_ vin: VIN) {
        self = vin.withUnsafeBytes { GBT32960VINField(bytes: $0) }
    }

    /// A field holding `text`'s first 17 bytes, zero-padded (platform codes, test identifiers).
    public init(padding text: String) {
        var bytes = Array(text.utf8.prefix(17))
        bytes += [UInt8](repeating: 0, count: 17 - bytes.count)
        self = bytes.withUnsafeBytes { GBT32960VINField(bytes: $0) }
    }

    /// Calls `body` with the 17 bytes.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var storage = (low, high, last)
        return try Swift.withUnsafeBytes(of: &storage) { (raw) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<17]))
        }
    }

    /// The 17 bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The VIN, or nil when the field is not 17 VIN characters.
    @inlinable
    public var vin: VIN? { withUnsafeBytes { VIN(bytes: $0) } }

    /// The VIN, or `GBT32960Error.badVIN`.
    @inlinable
    public func requireVIN() throws(GBT32960Error) -> VIN {
        guard let vin else { throw .badVIN }
        return vin
    }

    /// The bytes as text, trailing zero bytes dropped and other unprintable bytes as `\xNN`.
    public var description: String {
        var bytes = self.bytes
        while bytes.last == 0 { bytes.removeLast() }
        return String(WireField.quote(bytes).dropFirst().dropLast())
    }
}

/// The decoded header of a GB/T 32960 frame.
public struct GBT32960FrameHeader: Sendable, Hashable {
    public var edition: GBT32960Edition
    public var command: GBT32960Command
    public var response: GBT32960ResponseFlag
    public var vinField: GBT32960VINField
    public var encryption: GBT32960Encryption
    public var dataLength: Int

    @inlinable
    public init(
        edition: GBT32960Edition, command: GBT32960Command, response: GBT32960ResponseFlag,
        vinField: GBT32960VINField, encryption: GBT32960Encryption, dataLength: Int
    ) {
        self.edition = edition
        self.command = command
        self.response = response
        self.vinField = vinField
        self.encryption = encryption
        self.dataLength = dataLength
    }

    /// The whole frame's size on the wire.
    @inlinable
    public var frameLength: Int { GBT32960Format.overhead + dataLength }
}

/// What the bytes received so far hold, according to the frame header.
public enum GBT32960Scan: Sendable, Hashable {
    /// At least this many more bytes are needed before anything can be decided.
    case needMore(Int)
    /// A whole frame of `header.frameLength` bytes is at the start of the buffer.
    case frame(GBT32960FrameHeader)
}

/// The incremental, zero-copy GB/T 32960 frame parser.
///
/// ```
///   received: | ## cmd rsp VIN(17) enc len(2) | data unit (len) | BCC | ## ...
///   scan    -> .needMore(k) until 25 + len bytes are there, then .frame(header)
///   decode  -> GBT32960FrameView whose data unit points into the caller's buffer (no copy)
/// ```
///
/// Header fields are checked as soon as their bytes arrive; an oversize length is refused from the
/// header alone. After an error that `breaksFraming`, the caller skips to `startOffset(in:)`.
/// Nothing here allocates.
public struct GBT32960Decoder: Sendable {
    /// Data-unit lengths above this are `dataUnitTooLarge` (at most the standard's 65531).
    public var maxDataLength: Int

    public init(maxDataLength: Int = GBT32960Format.maxDataLength) {
        self.maxDataLength = min(maxDataLength, GBT32960Format.maxDataLength)
    }

    /// Reads the header at the start of `bytes` and says whether a whole frame is there.
    @inlinable
    public func scan(_ bytes: UnsafeRawBufferPointer) throws(GBT32960Error) -> GBT32960Scan {
        let count = bytes.count
        if count >= 1, GBT32960Edition(startByte: bytes.byte(0)) == nil {
            throw .badStart(UInt16(bytes.byte(0)) << 8 | UInt16(count >= 2 ? bytes.byte(1) : 0))
        }
        if count >= 2, bytes.byte(1) != bytes.byte(0) { throw .badStart(bytes.word(0)) }
        let edition = count >= 1 ? GBT32960Edition(startByte: bytes.byte(0)).unsafelyUnwrapped : .edition2016
        if count >= 3, GBT32960Command(wireValue: bytes.byte(2), edition: edition) == nil {
            throw .unknownCommand(bytes.byte(2))
        }
        if count >= 4, GBT32960ResponseFlag(wireValue: bytes.byte(3)) == nil {
            throw .unknownResponseFlag(bytes.byte(3))
        }
        if count >= 22, GBT32960Encryption(wireValue: bytes.byte(21), edition: edition) == nil {
            throw .unknownEncryption(bytes.byte(21))
        }
        guard count >= GBT32960Format.headerSize else { return .needMore(GBT32960Format.headerSize - count) }
        let length = Int(bytes.word(22))
        if length > maxDataLength { throw .dataUnitTooLarge(length: length, limit: maxDataLength) }
        let total = GBT32960Format.overhead + length
        guard count >= total else { return .needMore(total - count) }
        return .frame(
            GBT32960FrameHeader(
                edition: edition,
                command: GBT32960Command(wireValue: bytes.byte(2), edition: edition).unsafelyUnwrapped,
                response: GBT32960ResponseFlag(wireValue: bytes.byte(3)).unsafelyUnwrapped,
                vinField: GBT32960VINField(bytes: bytes.slice(4, 17)),
                encryption: GBT32960Encryption(wireValue: bytes.byte(21), edition: edition).unsafelyUnwrapped,
                dataLength: length))
    }

    /// Decodes and BCC-checks the frame at the start of `bytes`; nil if more bytes are needed.
    @inlinable
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(GBT32960Error) -> GBT32960FrameView? {
        guard case .frame(let header) = try scan(bytes) else { return nil }
        let bccOffset = GBT32960Format.headerSize + header.dataLength
        let expected = bytes.byte(bccOffset)
        let actual = GBT32960Decoder.bcc(bytes.slice(2, bccOffset - 2))
        if expected != actual { throw .badBCC(expected: expected, actual: actual) }
        return GBT32960FrameView(header: header, dataUnit: bytes.slice(GBT32960Format.headerSize, header.dataLength))
    }

    /// Decodes a buffer that must hold exactly one whole frame at its start; short is `truncated`.
    @inlinable
    public func decodeComplete(_ bytes: UnsafeRawBufferPointer) throws(GBT32960Error) -> GBT32960FrameView {
        switch try scan(bytes) {
        case .needMore(let more): throw .truncated(have: bytes.count, need: bytes.count + more)
        case .frame: return try decode(bytes).unsafelyUnwrapped
        }
    }

    /// The offset of the first possible frame start (`##` or `$$`, or one such byte at the very
    /// end) in `bytes`; `bytes.count` when there is none. Used to resynchronise after garbage.
    @inlinable
    public static func startOffset(in bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        let count = bytes.count
        while index < count {
            let b = bytes.byte(index)
            if b == 0x23 || b == 0x24 {
                if index + 1 == count || bytes.byte(index + 1) == b { return index }
            }
            index += 1
        }
        return count
    }

    /// XOR of every byte of `bytes`, eight bytes at a time.
    @inlinable
    public static func bcc(_ bytes: UnsafeRawBufferPointer) -> UInt8 {
        var wide: UInt64 = 0
        var index = 0
        let count = bytes.count
        while index &+ 32 <= count {
            wide ^= bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                ^ bytes.loadUnaligned(fromByteOffset: index &+ 8, as: UInt64.self)
                ^ bytes.loadUnaligned(fromByteOffset: index &+ 16, as: UInt64.self)
                ^ bytes.loadUnaligned(fromByteOffset: index &+ 24, as: UInt64.self)
            index &+= 32
        }
        while index &+ 8 <= count {
            wide ^= bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index &+= 8
        }
        wide ^= wide >> 32
        wide ^= wide >> 16
        wide ^= wide >> 8
        var result = UInt8(truncatingIfNeeded: wide)
        while index < count {
            result ^= bytes.byte(index)
            index &+= 1
        }
        return result
    }
}

/// One frame in the caller's buffer: the header values and a pointer to the data unit.
public struct GBT32960FrameView {
    public let header: GBT32960FrameHeader
    public let dataUnit: UnsafeRawBufferPointer

    @inlinable
    public init(header: GBT32960FrameHeader, dataUnit: UnsafeRawBufferPointer) {
        self.header = header
        self.dataUnit = dataUnit
    }

    /// Checks the data unit against its command's layout and returns its typed view.
    ///
    /// Refuses encrypted data units (`encryptedDataUnit`) and the 2025-only commands 0x09–0x0B
    /// (`unsupportedEditionContent`). A data unit is read with its edition's layout.
    @inlinable
    public func body() throws(GBT32960Error) -> GBT32960Body {
        if header.encryption != .none, header.dataLength > 0 {
            throw .encryptedDataUnit(header.encryption.rawValue)
        }
        let unit = dataUnit
        let edition = header.edition
        switch header.command {
        case .vehicleLogin: return .vehicleLogin(try GBT32960VehicleLogin(dataUnit: unit, edition: edition))
        case .realtime, .reissue:
            let report = try GBT32960RealtimeReport(dataUnit: unit, edition: edition)
            return header.command == .realtime ? .realtime(report) : .reissue(report)
        case .activation, .activationResponse, .payloadKeySync: throw .unsupportedEditionContent
        case .vehicleLogout: return .vehicleLogout(try GBT32960Logout(dataUnit: unit, command: 0x04))
        case .platformLogin: return .platformLogin(try GBT32960PlatformLogin(dataUnit: unit))
        case .platformLogout: return .platformLogout(try GBT32960Logout(dataUnit: unit, command: 0x06))
        case .heartbeat: return .heartbeat(try optionalTime(unit))
        case .timeCalibration: return .timeCalibration(try optionalTime(unit))
        }
    }

    /// A request's empty data unit (nil), or an answer's server time (six bytes).
    @inlinable
    func optionalTime(_ unit: UnsafeRawBufferPointer) throws(GBT32960Error) -> GBT32960Time? {
        switch unit.count {
        case 0: return nil
        case GBT32960Format.timeSize where header.response != .command: return try GBT32960Time(bytes: unit)
        default: throw .lengthMismatch(infoType: 0, length: unit.count)
        }
    }
}

/// A decoded data unit. Realtime reports and logins are views into the frame's bytes.
public enum GBT32960Body {
    case vehicleLogin(GBT32960VehicleLogin)
    case realtime(GBT32960RealtimeReport)
    case reissue(GBT32960RealtimeReport)
    case vehicleLogout(GBT32960Logout)
    case platformLogin(GBT32960PlatformLogin)
    case platformLogout(GBT32960Logout)
    /// A heartbeat; an answer may carry the server time (EMQX-style), a request carries nothing.
    case heartbeat(GBT32960Time?)
    /// A time calibration request (nil), or its answer with the server time.
    case timeCalibration(GBT32960Time?)
}
