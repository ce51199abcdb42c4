import HorgosWire

extension FrameError {
    /// A one-line explanation for the ERROR frame's reason and the log.
    public var reason: String {
        switch self {
        case .badMagic(let magic): "bad magic 0x\(String(magic, radix: 16)); expected 0x4748 ('HG')"
        case .unsupportedVersion(let version): "protocol version \(version) is not supported; this server speaks 1"
        case .unknownFrameType(let type): "unknown frame type 0x\(String(type, radix: 16))"
        case .frameTooLarge(let length, let limit): "payload length \(length) is over the limit of \(limit) bytes"
        case .truncatedFrame(let have, _): "the stream ended inside a frame (\(have) bytes of it received)"
        case .badChecksum(let expected, let actual):
            "CRC-32C mismatch: frame says 0x\(String(expected, radix: 16)), bytes give 0x\(String(actual, radix: 16))"
        case .badPayloadLength(let type, let length): "payload length \(length) is wrong for \(type)"
        case .recordCountMismatch(let count, let length): "count \(count) does not fit payload length \(length)"
        case .recordSizeTooSmall(let size): "record size \(size) is below the v1 size of 40"
        case .invalidVIN: "the VIN is not 17 characters of 0-9 A-H J-N P R-Z"
        case .emptyBatch: "TELEMETRY with no records"
        case .tooManyRecords(let count, let limit): "\(count) records is over the limit of \(limit)"
        case .tooManyDTCs(let count): "\(count) DTCs is over the limit of 1024"
        case .invalidFieldValue(let field, let record):
            record >= 0 ? "\(field) out of range in record \(record)" : "\(field) out of range"
        case .invalidPayload(let why): why
        }
    }
}
