/// What the bytes received so far hold, according to the frame header.
public enum FrameScan: Sendable, Hashable {
    /// At least this many more bytes are needed before anything can be decided.
    case needMore(Int)
    /// A whole frame of `header.frameLength` bytes is available at the start of the buffer.
    case frame(FrameHeader)
}

/// The incremental, zero-copy frame parser.
///
/// ```
///   received:  | 12-byte header | payload (N) | crc (4) | next header ...
///   scan    -> .needMore(k) until header + N + 4 bytes are there, .frame(header) then
///   decode  -> FrameView whose payload points into the caller's buffer (no copy)
/// ```
///
/// An oversize `payload_length` is rejected from the header alone, before any payload byte is
/// buffered. Nothing here allocates: views hold pointers into the caller's bytes and are valid only
/// while those bytes are.
public struct FrameDecoder: Sendable {
    /// Payload lengths above this are `FrameError.frameTooLarge`.
    public var maxPayload: Int
    /// TELEMETRY record counts above this are `FrameError.tooManyRecords`.
    public var maxRecords: Int
    /// How `decode` computes the CRC-32C: the fastest this CPU has unless set (benchmarks, tests).
    /// Setting `.hardware` on a CPU without it is a precondition failure.
    public var checksumImplementation: CRC32C.Implementation = CRC32C.preferred {
        didSet {
            precondition(CRC32C.available.contains(checksumImplementation), "\(checksumImplementation) unavailable")
        }
    }

    public init(maxPayload: Int = WireFormat.defaultMaxPayload, maxRecords: Int? = nil) {
        self.maxPayload = maxPayload
        self.maxRecords = maxRecords ?? (maxPayload - WireFormat.telemetryHeaderSize) / WireFormat.recordSizeV1
    }

    /// Reads the header at the start of `bytes` and says whether a whole frame is there.
    @inlinable
    public func scan(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> FrameScan {
        // The common case first: a whole, good header; magic and version checked in one compare.
        if bytes.count >= WireFormat.headerSize {
            let word = bytes.u32(0)
            if word & 0x00FF_FFFF == UInt32(WireFormat.version) << 16 | UInt32(WireFormat.magic),
                let type = FrameType(wireValue: UInt8(truncatingIfNeeded: word >> 24))
            {
                let length = Int(bytes.u32(8))
                if length > maxPayload { throw .frameTooLarge(length: length, limit: maxPayload) }
                let total = WireFormat.overhead &+ length
                guard bytes.count >= total else { return .needMore(total &- bytes.count) }
                return .frame(FrameHeader(type: type, sequence: bytes.u32(4), payloadLength: length))
            }
        }
        return try scanPartOrBadHeader(bytes)
    }

    /// `scan` for fewer than 12 bytes or a header with a bad first four bytes: checks each of
    /// magic, version and type as soon as its bytes are there, in that order.
    @inlinable
    func scanPartOrBadHeader(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> FrameScan {
        // Check what the available bytes allow as early as they allow it.
        if bytes.count >= 2 {
            let magic = bytes.u16(0)
            if magic != WireFormat.magic { throw .badMagic(magic) }
        }
        if bytes.count >= 3 {
            let version = bytes.u8(2)
            if version != WireFormat.version { throw .unsupportedVersion(version) }
        }
        if bytes.count >= 4, FrameType(wireValue: bytes.u8(3)) == nil { throw .unknownFrameType(bytes.u8(3)) }
        guard bytes.count >= WireFormat.headerSize,
            let type = FrameType(wireValue: bytes.u8(3))
        else { return .needMore(WireFormat.headerSize - bytes.count) }
        let length = Int(bytes.u32(8))
        if length > maxPayload { throw .frameTooLarge(length: length, limit: maxPayload) }
        let header = FrameHeader(type: type, sequence: bytes.u32(4), payloadLength: length)
        let total = header.frameLength
        guard bytes.count >= total else { return .needMore(total - bytes.count) }
        return .frame(header)
    }

    /// Decodes and CRC-checks the frame at the start of `bytes`; nil if more bytes are needed.
    @inlinable
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> FrameView? {
        guard case .frame(let header) = try scan(bytes) else { return nil }
        let crcOffset = WireFormat.headerSize + header.payloadLength
        let expected = bytes.u32(crcOffset)
        let actual = ~CRC32C.updateUnchecked(
            0xFFFF_FFFF, UnsafeRawBufferPointer(rebasing: bytes[0..<crcOffset]), using: checksumImplementation)
        if expected != actual { throw .badChecksum(expected: expected, actual: actual) }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[WireFormat.headerSize..<crcOffset])
        return FrameView(header: header, payload: payload)
    }

    /// Decodes a whole buffer that must hold exactly one frame; a short buffer is `truncatedFrame`.
    @inlinable
    public func decodeComplete(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> FrameView {
        switch try scan(bytes) {
        case .needMore(let more): throw .truncatedFrame(have: bytes.count, need: bytes.count + more)
        case .frame: return try decode(bytes)!
        }
    }

    /// Decodes the frame at the start of `bytes` and its payload in one step.
    @inlinable
    public func decodeMessage(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Message? {
        guard let frame = try decode(bytes) else { return nil }
        return try frame.message(maxRecords: maxRecords)
    }
}

/// One frame in the caller's buffer: the header values and a pointer to the payload.
public struct FrameView {
    public let header: FrameHeader
    public let payload: UnsafeRawBufferPointer

    @inlinable
    public init(header: FrameHeader, payload: UnsafeRawBufferPointer) {
        self.header = header
        self.payload = payload
    }

    /// Checks the payload against its type's rules and returns its typed view.
    @inlinable
    public func message(maxRecords: Int = WireFormat.defaultMaxRecords) throws(FrameError) -> Message {
        switch header.type {
        case .hello: return .hello(try Hello(payload: payload))
        case .welcome: return .welcome(try Welcome(payload: payload))
        case .telemetry: return .telemetry(try TelemetryBatchView(payload: payload, maxRecords: maxRecords))
        case .event: return .event(try EventView(payload: payload))
        case .ack: return .ack(try Ack(payload: payload))
        case .error: return .error(try ErrorMessage(payload: payload))
        case .ping: return .ping(try Ping(payload: payload).opaque)
        case .pong: return .pong(try Ping(payload: payload, type: .pong).opaque)
        case .bye: return .bye(try Bye(payload: payload))
        }
    }
}

/// A decoded frame payload. Data payloads are views into the frame's bytes; control payloads are values.
public enum Message {
    case hello(Hello)
    case welcome(Welcome)
    case telemetry(TelemetryBatchView)
    case event(EventView)
    case ack(Ack)
    case error(ErrorMessage)
    case ping(UInt64)
    case pong(UInt64)
    case bye(Bye)
}
