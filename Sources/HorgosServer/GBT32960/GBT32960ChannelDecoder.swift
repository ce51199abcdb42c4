import HorgosGBT32960
import NIOCore

/// What the GB/T 32960 decoder takes off a connection: a BCC-checked frame still in the receive
/// buffer (no copy), or a named failure.
public enum GBT32960Inbound: Sendable {
    /// A whole frame whose BCC is right; `bytes` is a slice of the receive buffer (start through BCC).
    case frame(GBT32960FrameHeader, bytes: ByteBuffer)
    /// A delimited frame that is refused (bad BCC): its header can be answered with an error.
    case refused(GBT32960FrameHeader, GBT32960Error)
    /// Bytes that are no frame (bad start, unknown command, oversize length, …): `skipped` bytes were
    /// dropped up to the next start bytes. No answer can name them.
    case garbage(GBT32960Error, skipped: Int)
}

/// Splits the TLS plaintext (or TCP) stream into GB/T 32960 frames with HorgosGBT32960's parser.
///
/// ```
///   | ## hdr | data unit | BCC | junk | ## hdr | da  ->  .frame, .garbage(skipped: 4), (waits)
/// ```
/// An oversize length is refused from the 24 header bytes alone (`maxDataLength`), so a peer cannot
/// make the server buffer more than one frame of that size. After bytes that are no frame the
/// decoder resynchronises on the next `##` / `$$`.
public struct GBT32960ChannelDecoder: ByteToMessageDecoder {
    public typealias InboundOut = GBT32960Inbound

    let parser: GBT32960Decoder

    public init(maxDataLength: Int = GBT32960Format.maxDataLength) {
        parser = GBT32960Decoder(maxDataLength: maxDataLength)
    }

    enum Step {
        case needMore
        case frame(GBT32960FrameHeader)
        case refused(GBT32960FrameHeader, GBT32960Error)
        case garbage(GBT32960Error, skip: Int)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let parser = self.parser
        let step: Step = buffer.withUnsafeReadableBytes { raw -> Step in
            do throws(GBT32960Error) {
                guard case .frame(let header) = try parser.scan(raw) else { return .needMore }
                do throws(GBT32960Error) {
                    _ = try parser.decode(raw)
                    return .frame(header)
                } catch {
                    return .refused(header, error)
                }
            } catch {
                // Skip at least one byte, then up to the next possible start.
                let rest = UnsafeRawBufferPointer(rebasing: raw[1...])
                return .garbage(error, skip: 1 + GBT32960Decoder.startOffset(in: rest))
            }
        }
        switch step {
        case .needMore:
            return .needMoreData
        case .frame(let header):
            let bytes = buffer.readSlice(length: header.frameLength)!
            context.fireChannelRead(wrapInboundOut(.frame(header, bytes: bytes)))
        case .refused(let header, let error):
            buffer.moveReaderIndex(forwardBy: header.frameLength)
            context.fireChannelRead(wrapInboundOut(.refused(header, error)))
        case .garbage(let error, let skip):
            buffer.moveReaderIndex(forwardBy: skip)
            context.fireChannelRead(wrapInboundOut(.garbage(error, skipped: skip)))
        }
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let have = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: have)
            context.fireChannelRead(wrapInboundOut(.garbage(.truncated(have: have, need: have + 1), skipped: have)))
        }
        return .needMoreData
    }
}
