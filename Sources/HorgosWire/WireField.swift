/// One decoded value, named as in PROTOCOL.md (`vin`, `record[3].soc`), with its canonical text.
///
/// The vocabulary of the test vectors in Proto/vectors/ and of tools that print frames: integers in
/// decimal (signed where the wire type is signed), names for frame types and BYE reasons, strings
/// quoted with `\"`, `\\` and `\xNN` escapes. Building the list allocates; it is not for the hot path.
public struct WireField: Sendable, Hashable, CustomStringConvertible {
    /// The field's name, with `record[i].` or `dtc[i].` in front of per-entry fields.
    public var name: String
    /// The value's canonical text.
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    init(_ name: String, _ value: some BinaryInteger) {
        self.init(name, String(value))
    }

    /// `name = value`, the line format of the vector files.
    public var description: String { "\(name) = \(value)" }

    /// Quotes text the way the vector files do: printable ASCII as is, except `"` and `\`, and any
    /// other byte as `\xNN`.
    public static func quote(_ bytes: some Sequence<UInt8>) -> String {
        var out = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out + "\""
    }
}

extension FrameHeader {
    /// The header's decoded values: `type`, `sequence`, `payload_length`.
    public var fields: [WireField] {
        [WireField("type", type.name), WireField("sequence", sequence), WireField("payload_length", payloadLength)]
    }
}

extension Message {
    /// Every decoded value of the payload, records and DTCs included, in wire order.
    public var fields: [WireField] {
        switch self {
        case .hello(let hello):
            let text = Array(hello.softwareVersion.utf8)
            return [
                WireField("client_kind", hello.clientKind.rawValue),
                WireField("protocol_version", hello.protocolVersion),
                WireField("protocol_minor", hello.protocolMinor),
                WireField("client_time_ms", hello.clientTimeMs),
                WireField("sw_version_length", text.count),
                WireField("sw_version", WireField.quote(text)),
            ]
        case .welcome(let welcome):
            var fields = [
                WireField("server_time_ms", welcome.serverTimeMs),
                WireField("max_payload", welcome.maxPayload),
                WireField("ack_window", welcome.ackWindow),
                WireField("heartbeat_seconds", welcome.heartbeatSeconds),
                WireField("idle_timeout_seconds", welcome.idleTimeoutSeconds),
                WireField("max_records", welcome.maxRecords),
            ]
            if let horizon = welcome.horizon {
                fields += [
                    WireField("horizon_past_seconds", horizon.pastSeconds),
                    WireField("horizon_future_seconds", horizon.futureSeconds),
                ]
            }
            return fields
        case .telemetry(let batch):
            var fields = [
                WireField("base_time_ms", batch.baseTimeMs),
                WireField("vin", WireField.quote(batch.vin.description.utf8)),
                WireField("record_size", batch.recordSize),
                WireField("record_count", batch.count),
            ]
            for index in 0..<batch.count { fields += batch[index].fields(prefix: "record[\(index)].") }
            return fields
        case .event(let event):
            var fields = [
                WireField("time_ms", event.timeMs),
                WireField("vin", WireField.quote(event.vin.description.utf8)),
                WireField("max_alarm_level", event.maxAlarmLevel),
                WireField("alarm_flags", event.alarmFlags),
                WireField("dtc_count", event.dtcCount),
            ]
            for index in 0..<event.dtcCount {
                let dtc = event[index]
                fields += [
                    WireField("dtc[\(index)].code", dtc.code),
                    WireField("dtc[\(index)].source", dtc.source.rawValue),
                    WireField("dtc[\(index)].state", dtc.state),
                ]
            }
            return fields
        case .ack(let ack):
            return [WireField("ack_sequence", ack.sequence), WireField("rejected_records", ack.rejectedRecords)]
        case .error(let error):
            return [
                WireField("code", error.rawCode),
                WireField("code_name", error.knownCode?.name ?? "?"),
                WireField("error_sequence", error.sequence),
                WireField("reason", WireField.quote(error.reason.utf8)),
            ]
        case .ping(let opaque), .pong(let opaque):
            return [WireField("opaque", opaque)]
        case .bye(let bye):
            return [WireField("reason", bye.reason.rawValue)]
        }
    }
}

extension TelemetryRecordView {
    /// Every field of the record, each name preceded by `prefix`; `timestamp_ms` is base + offset.
    public func fields(prefix: String = "") -> [WireField] {
        [
            WireField(prefix + "time_offset_ms", timeOffsetMs),
            WireField(prefix + "timestamp_ms", timestampMs),
            WireField(prefix + "latitude", latitudeE7),
            WireField(prefix + "longitude", longitudeE7),
            WireField(prefix + "odometer", odometerHm),
            WireField(prefix + "speed", speedDkmh),
            WireField(prefix + "heading", headingCdeg),
            WireField(prefix + "pack_voltage", packVoltageDv),
            WireField(prefix + "pack_current", packCurrentDa),
            WireField(prefix + "soc", soc),
            WireField(prefix + "max_cell_temp", maxCellTemp),
            WireField(prefix + "min_cell_temp", minCellTemp),
            WireField(prefix + "max_alarm_level", maxAlarmLevel),
            WireField(prefix + "status", status),
            WireField(prefix + "aux_battery_voltage", auxBatteryCv),
            WireField(prefix + "alarm_flags", alarmFlags),
            WireField(prefix + "remaining_range", remainingRangeKm),
        ]
    }
}

extension FrameType {
    /// The upper-case name used in PROTOCOL.md and the vector files (`TELEMETRY`).
    public var name: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .telemetry: "TELEMETRY"
        case .event: "EVENT"
        case .ack: "ACK"
        case .error: "ERROR"
        case .ping: "PING"
        case .pong: "PONG"
        case .bye: "BYE"
        }
    }

    /// Finds a frame type by its PROTOCOL.md name.
    public init?(name: String) {
        guard let type = FrameType.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }
}
