import NIOCore

/// Protocol Buffers wire format written straight into a `ByteBuffer`: the hot path of the stream
/// record (`Record`, `Telemetry`, `Sample`, `Event`, `Erase` of Proto/stream/horgos_stream_v1.proto),
/// where building SwiftProtobuf message values cost more than the rest of a publish per record
/// (BENCHMARKS.md, issue 20). Tests decode every kind with the generated SwiftProtobuf types
/// (`HorgosStreamFormat`) and Python's protobuf, so this writer cannot drift from the schema.
///
/// Rules it follows (protobuf encoding guide): varints LSB first, 7 bits a byte; `sint32` zigzag;
/// `double`/`float` little-endian fixed 64/32 bits; proto3 singular fields at their default are not
/// written, `optional` ones are written whenever present; fields in field-number order.
struct ProtobufWriter {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    @inline(__always)
    static func varint(_ value: UInt64, to buffer: inout ByteBuffer) {
        var v = value
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(v))
    }

    @inline(__always)
    static func tag(_ field: Int, _ type: WireType, to buffer: inout ByteBuffer) {
        varint(UInt64(field << 3) | UInt64(type.rawValue), to: &buffer)
    }

    @inline(__always)
    static func uint(_ field: Int, _ value: UInt64, to buffer: inout ByteBuffer) {
        tag(field, .varint, to: &buffer)
        varint(value, to: &buffer)
    }

    /// `int64`/`int32`: two's complement as a varint (negative values take 10 bytes).
    @inline(__always)
    static func int(_ field: Int, _ value: Int64, to buffer: inout ByteBuffer) {
        uint(field, UInt64(bitPattern: value), to: &buffer)
    }

    @inline(__always)
    static func sint32(_ field: Int, _ value: Int32, to buffer: inout ByteBuffer) {
        let zigzag = UInt32(bitPattern: (value << 1) ^ (value >> 31))
        uint(field, UInt64(zigzag), to: &buffer)
    }

    @inline(__always)
    static func double(_ field: Int, _ value: Double, to buffer: inout ByteBuffer) {
        tag(field, .fixed64, to: &buffer)
        buffer.writeInteger(value.bitPattern, endianness: .little)
    }

    @inline(__always)
    static func float(_ field: Int, _ value: Float, to buffer: inout ByteBuffer) {
        tag(field, .fixed32, to: &buffer)
        buffer.writeInteger(value.bitPattern, endianness: .little)
    }

    @inline(__always)
    static func bytes(_ field: Int, _ value: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        tag(field, .lengthDelimited, to: &buffer)
        varint(UInt64(value.count), to: &buffer)
        buffer.writeBytes(value)
    }

    static func string(_ field: Int, _ value: String, to buffer: inout ByteBuffer) {
        var text = value
        text.withUTF8 { bytes(field, UnsafeRawBufferPointer($0), to: &buffer) }
    }

    /// A nested message already encoded in `body` (its readable bytes).
    @inline(__always)
    static func message(_ field: Int, _ body: ByteBuffer, to buffer: inout ByteBuffer) {
        tag(field, .lengthDelimited, to: &buffer)
        varint(UInt64(body.readableBytes), to: &buffer)
        var copy = body
        buffer.writeBuffer(&copy)
    }
}
