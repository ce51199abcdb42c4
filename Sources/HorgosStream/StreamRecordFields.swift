import NIOCore

/// The envelope of a stream record read straight from its protobuf bytes (field numbers of
/// Proto/stream/horgos_stream_v1.proto `Record`), skipping the body: what a follower needs to apply
/// the entry, without decoding every sample.
public struct StreamRecordFields: Sendable, Hashable {
    public var formatVersion: UInt64 = 0
    public var node = ""
    public var lsn: UInt64 = 0
    public var region = ""
    public var kind: UInt64 = 0
    public var arrivalTimeMs: Int64 = 0
    public var vin = ""
    public var journalPayload: [UInt8] = []

    /// Parses `bytes`; nil when they are not a well-formed protobuf message.
    public init?(_ bytes: ByteBufferView) {
        var reader = Reader(bytes: bytes)
        while !reader.atEnd {
            guard let key = reader.varint() else { return nil }
            let field = Int(key >> 3)
            let type = UInt8(key & 7)
            switch (field, type) {
            case (1, 0): guard let v = reader.varint() else { return nil }; formatVersion = v
            case (2, 2):
                guard let v = reader.lengthDelimited() else { return nil }; node = String(decoding: v, as: UTF8.self)
            case (3, 0): guard let v = reader.varint() else { return nil }; lsn = v
            case (4, 2):
                guard let v = reader.lengthDelimited() else { return nil }; region = String(decoding: v, as: UTF8.self)
            case (5, 0): guard let v = reader.varint() else { return nil }; kind = v
            case (7, 0): guard let v = reader.varint() else { return nil }; arrivalTimeMs = Int64(bitPattern: v)
            case (8, 2):
                guard let v = reader.lengthDelimited() else { return nil }; vin = String(decoding: v, as: UTF8.self)
            case (10, 2): guard let v = reader.lengthDelimited() else { return nil }; journalPayload = Array(v)
            default: guard reader.skip(type: type) else { return nil }
            }
        }
    }

    struct Reader {
        let bytes: ByteBufferView
        var index: ByteBufferView.Index

        init(bytes: ByteBufferView) {
            self.bytes = bytes
            index = bytes.startIndex
        }

        var atEnd: Bool { index >= bytes.endIndex }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.endIndex, shift < 64 {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        mutating func lengthDelimited() -> ByteBufferView.SubSequence? {
            guard let length = varint(), length <= UInt64(bytes.endIndex - index) else { return nil }
            let end = index + Int(length)
            defer { index = end }
            return bytes[index..<end]
        }

        mutating func skip(type: UInt8) -> Bool {
            switch type {
            case 0: return varint() != nil
            case 1: guard bytes.endIndex - index >= 8 else { return false }; index += 8; return true
            case 2: return lengthDelimited() != nil
            case 5: guard bytes.endIndex - index >= 4 else { return false }; index += 4; return true
            default: return false
            }
        }
    }
}
