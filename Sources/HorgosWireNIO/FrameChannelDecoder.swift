import HorgosWire
import NIOCore

/// One CRC-checked frame taken off a connection, still in the receive buffer (no copy).
///
/// `bytes` is a slice of NIO's buffer holding the whole frame; `payload` the slice of its payload.
/// Slices share storage with the receive buffer, so handing one to a writer thread costs a reference
/// count, not a copy. The frame is only its `ByteBuffer` (the header is read back from its first 12
/// bytes): at 24 bytes it fits an existential's inline buffer, so passing it down the pipeline in a
/// `NIOAny` allocates nothing per frame.
public struct InboundFrame: Sendable {
    public let bytes: ByteBuffer

    /// A frame whose header the decoder has checked (`bytes` starts with it).
    public init(bytes: ByteBuffer) {
        self.bytes = bytes
    }

    /// The frame's header (type, sequence, payload length), as the decoder validated it.
    public var header: FrameHeader {
        let start = bytes.readerIndex
        return FrameHeader(
            type: FrameType(wireValue: bytes.getInteger(at: start + 3, as: UInt8.self)!)!,
            sequence: bytes.getInteger(at: start + 4, endianness: .little, as: UInt32.self)!,
            payloadLength: Int(bytes.getInteger(at: start + 8, endianness: .little, as: UInt32.self)!))
    }

    /// The payload bytes of the frame.
    public var payload: ByteBuffer {
        bytes.getSlice(at: bytes.readerIndex + WireFormat.headerSize, length: bytes.readableBytes - WireFormat.overhead)!
    }
}

/// A frame-level failure (PROTOCOL.md 2) and the sequence of the frame it concerns.
///
/// `sequence` is the header's sequence field when the whole 12-byte header was read and its first
/// four bytes were good (`FRAME_TOO_LARGE`, `BAD_CHECKSUM`), else 0: a header with bad magic,
/// version or type is not trusted, and a truncated stream has no header to speak of.
public struct FramingError: Error, Sendable, Hashable {
    public var error: FrameError
    public var sequence: UInt32

    public init(_ error: FrameError, sequence: UInt32) {
        self.error = error
        self.sequence = sequence
    }
}

/// Splits the TLS plaintext stream into frames with HorgosWire's incremental parser.
///
/// ```
///   | hdr | payload | crc | hdr | pay |  ->  InboundFrame, (waits for the rest)
/// ```
///
/// An oversize length is rejected from the 12 header bytes alone, before the payload is buffered,
/// so a peer cannot make the server hold more than `maxPayload` bytes of one frame. Errors are
/// `FramingError`s: the `FrameError` and the sequence the ERROR frame reports.
public struct FrameChannelDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame

    let parser: FrameDecoder

    public init(maxPayload: Int) {
        self.parser = FrameDecoder(maxPayload: maxPayload)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let parser = self.parser
        let header: FrameHeader? = try buffer.withUnsafeReadableBytes { raw throws(FramingError) -> FrameHeader? in
            do throws(FrameError) {
                guard case .frame(let header) = try parser.scan(raw) else { return nil }
                let crcOffset = WireFormat.headerSize + header.payloadLength
                let expected = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: crcOffset, as: UInt32.self))
                let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<crcOffset]))
                if expected != actual { throw .badChecksum(expected: expected, actual: actual) }
                return header
            } catch {
                switch error {
                case .frameTooLarge, .badChecksum:
                    let sequence = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                    throw FramingError(error, sequence: sequence)
                default: throw FramingError(error, sequence: 0)
                }
            }
        }
        guard let header else { return .needMoreData }
        let bytes = buffer.readSlice(length: header.frameLength)!
        context.fireChannelRead(wrapInboundOut(InboundFrame(bytes: bytes)))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let have = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: have)
            throw FramingError(.truncatedFrame(have: have, need: have + 1), sequence: 0)
        }
        return .needMoreData
    }
}
