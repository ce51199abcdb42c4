/// `RawSpan` entry points: the same parser over the bytes a `RawSpan` covers.
///
/// NIO's `ByteBuffer.readableBytesSpan` hands out a `RawSpan`; these let a channel handler parse
/// straight from it without copying. A span cannot escape, so the frame and message views (which
/// point into the bytes) are given to a closure and are valid only inside it.
extension FrameDecoder {
    /// Reads the header at the start of `span` and says whether a whole frame is there.
    @inlinable
    public func scan(_ span: RawSpan) throws(FrameError) -> FrameScan {
        try span.withUnsafeBytes { (bytes) throws(FrameError) -> FrameScan in try scan(bytes) }
    }

    /// Decodes and CRC-checks the frame at the start of `span` and calls `body` with its view.
    ///
    /// Returns nil, without calling `body`, when more bytes are needed (`scan` says how many).
    /// Throws a `FrameError` for a bad frame, or what `body` throws. The frame occupies
    /// `view.header.frameLength` bytes; the caller consumes them.
    @inlinable
    public func withFrame<R>(_ span: RawSpan, _ body: (FrameView) throws -> R) throws -> R? {
        try span.withUnsafeBytes { (bytes) throws -> R? in
            guard let frame = try decode(bytes) else { return nil }
            return try body(frame)
        }
    }

    /// Decodes the frame at the start of `span` and its payload, and calls `body` with both.
    ///
    /// Returns nil, without calling `body`, when more bytes are needed. Throws a `FrameError` for
    /// a bad frame or payload, or what `body` throws.
    @inlinable
    public func withMessage<R>(_ span: RawSpan, _ body: (FrameHeader, Message) throws -> R) throws -> R? {
        try span.withUnsafeBytes { (bytes) throws -> R? in
            guard let frame = try decode(bytes) else { return nil }
            return try body(frame.header, try frame.message(maxRecords: maxRecords))
        }
    }
}
