import HorgosWire

/// Writes the text of Proto/vectors/*.txt and Proto/fuzz-corpus/ from the cases below.
///
/// Expected values come from the values each case is built from (not from decoding), and each
/// invalid case names the error its author intends; the vector test then checks the decoder against
/// both. Run `HORGOS_WRITE_VECTORS=1 swift test --filter VectorTests` after changing a case.
enum VectorGenerator {
    /// A case as built: its name, bytes and expectations.
    struct Case {
        var name: String
        var notes: [String]
        var bytes: [UInt8]
        var frames: [[WireField]] = []
        var error: ErrorCode?
        var errorField: String?
        var errorRecord: Int?
        var maxPayload: Int?
        var maxRecords: Int?
        /// What the bytes hold that no listed value shows (`unlisted_bytes:`).
        var unlistedBytes: String?
    }

    static let vin = VIN("LSVAU2180N2183294")!
    static let otherVIN = VIN("WVWZZZ1KZ6W612345")!
    static let base: Int64 = 1_700_000_000_000

    /// Output files: name to text. The order of cases in a file is the order below.
    static func files() -> [(name: String, text: String)] {
        [
            ("valid.txt", render(validCases(), title: "Valid frames and streams: each decodes to the values listed.")),
            ("valid-large.txt", render(largeCases(), title: "Valid frames at the size limits (long files).")),
            ("invalid.txt", render(invalidCases(), title: "Invalid input: each is rejected with the error named.")),
        ]
    }

    /// Every case, for the fuzz corpus (one file per case).
    static func allCases() -> [Case] { validCases() + largeCases() + invalidCases() }

    // MARK: - Frames and their expected values

    /// A frame to encode plus its expected values, built from the same inputs.
    struct Frame {
        var bytes: [UInt8] = []
        var fields: [WireField] = []
    }

    static func header(_ type: FrameType, _ sequence: UInt32, _ bytes: [UInt8]) -> [WireField] {
        [
            WireField("type", type.name), WireField("sequence", String(sequence)),
            WireField("payload_length", String(bytes.count - WireFormat.overhead)),
        ]
    }

    static func f(_ name: String, _ value: some BinaryInteger) -> WireField { WireField(name, String(value)) }

    static func hello(_ hello: Hello, sequence: UInt32 = 0) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendHello(hello, sequence: sequence, to: &out)
        let text = Array(hello.softwareVersion.utf8)
        return Frame(
            bytes: out,
            fields: header(.hello, sequence, out) + [
                f("client_kind", hello.clientKind.rawValue), f("protocol_version", hello.protocolVersion),
                f("protocol_minor", hello.protocolMinor),
                f("client_time_ms", hello.clientTimeMs), f("sw_version_length", text.count),
                WireField("sw_version", WireField.quote(text)),
            ])
    }

    static func welcome(_ w: Welcome, sequence: UInt32 = 1) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendWelcome(w, sequence: sequence, to: &out)
        return Frame(
            bytes: out,
            fields: header(.welcome, sequence, out) + [
                f("server_time_ms", w.serverTimeMs), f("max_payload", w.maxPayload), f("ack_window", w.ackWindow),
                f("heartbeat_seconds", w.heartbeatSeconds), f("idle_timeout_seconds", w.idleTimeoutSeconds),
                f("max_records", w.maxRecords),
            ] + (w.horizon.map {
                [f("horizon_past_seconds", $0.pastSeconds), f("horizon_future_seconds", $0.futureSeconds)]
            } ?? []))
    }

    static func recordFields(_ r: TelemetryRecord, base: Int64, index: Int) -> [WireField] {
        let p = "record[\(index)]."
        return [
            f(p + "time_offset_ms", r.timeOffsetMs), f(p + "timestamp_ms", base &+ Int64(r.timeOffsetMs)),
            f(p + "latitude", r.latitudeE7), f(p + "longitude", r.longitudeE7), f(p + "odometer", r.odometerHm),
            f(p + "speed", r.speedDkmh), f(p + "heading", r.headingCdeg), f(p + "pack_voltage", r.packVoltageDv),
            f(p + "pack_current", r.packCurrentDa), f(p + "soc", r.soc), f(p + "max_cell_temp", r.maxCellTemp),
            f(p + "min_cell_temp", r.minCellTemp), f(p + "max_alarm_level", r.maxAlarmLevel),
            f(p + "status", r.status), f(p + "aux_battery_voltage", r.auxBatteryCv),
            f(p + "alarm_flags", r.alarmFlags), f(p + "remaining_range", r.remainingRangeKm),
        ]
    }

    /// A TELEMETRY frame; with `recordSize` > 40 the bytes past 40 in each record are `filler`.
    static func telemetry(
        _ records: [TelemetryRecord], vin: VIN = vin, base: Int64 = base, recordSize: Int = 40,
        filler: UInt8 = 0, sequence: UInt32 = 1
    ) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendTelemetry(
            vin: vin, baseTimeMs: base, records: records, recordSize: recordSize, sequence: sequence, to: &out)
        if recordSize > 40 && filler != 0 {
            for index in records.indices {
                let start = 12 + 28 + index * recordSize + 40
                for offset in start..<(start + recordSize - 40) { out[offset] = filler }
            }
            fixCRC(&out)
        }
        var fields =
            header(.telemetry, sequence, out) + [
                f("base_time_ms", base), WireField("vin", WireField.quote(vin.description.utf8)),
                f("record_size", recordSize), f("record_count", records.count),
            ]
        for (index, record) in records.enumerated() { fields += recordFields(record, base: base, index: index) }
        return Frame(bytes: out, fields: fields)
    }

    static func event(
        _ dtcs: [DiagnosticTroubleCode], time: Int64 = base, level: UInt8 = 0, flags: UInt32 = 0,
        vin: VIN = vin, sequence: UInt32 = 2
    ) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendEvent(
            vin: vin, timeMs: time, maxAlarmLevel: level, alarmFlags: flags, dtcs: dtcs, sequence: sequence, to: &out)
        var fields =
            header(.event, sequence, out) + [
                f("time_ms", time), WireField("vin", WireField.quote(vin.description.utf8)),
                f("max_alarm_level", level), f("alarm_flags", flags), f("dtc_count", dtcs.count),
            ]
        for (index, dtc) in dtcs.enumerated() {
            fields += [
                f("dtc[\(index)].code", dtc.code), f("dtc[\(index)].source", dtc.source.rawValue),
                f("dtc[\(index)].state", dtc.state),
            ]
        }
        return Frame(bytes: out, fields: fields)
    }

    static func ack(_ ack: Ack, sequence: UInt32 = 1) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendAck(ack, sequence: sequence, to: &out)
        return Frame(
            bytes: out,
            fields: header(.ack, sequence, out) + [
                f("ack_sequence", ack.sequence), f("rejected_records", ack.rejectedRecords),
            ])
    }

    static func error(_ e: ErrorMessage, sequence: UInt32 = 1) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendError(e, sequence: sequence, to: &out)
        return Frame(
            bytes: out,
            fields: header(.error, sequence, out) + [
                f("code", e.rawCode), WireField("code_name", ErrorCode(rawValue: e.rawCode)?.name ?? "?"),
                f("error_sequence", e.sequence), WireField("reason", WireField.quote(e.reason.utf8)),
            ])
    }

    static func ping(_ opaque: UInt64, type: FrameType = .ping, sequence: UInt32 = 0) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendPing(opaque, type: type, sequence: sequence, to: &out)
        return Frame(bytes: out, fields: header(type, sequence, out) + [f("opaque", opaque)])
    }

    static func bye(_ reason: Bye.Reason, sequence: UInt32 = 0) -> Frame {
        var out: [UInt8] = []
        FrameEncoder.appendBye(Bye(reason: reason), sequence: sequence, to: &out)
        return Frame(bytes: out, fields: header(.bye, sequence, out) + [f("reason", reason.rawValue)])
    }

    /// Rewrites the CRC trailer of the single frame in `bytes`.
    static func fixCRC(_ bytes: inout [UInt8]) {
        let end = bytes.count - 4
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
        for k in 0..<4 { bytes[bytes.count - 4 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
    }

    /// Writes `value` little-endian at `offset` of the payload, then fixes the CRC.
    static func patched(_ frame: Frame, payload offset: Int, _ value: some FixedWidthInteger) -> [UInt8] {
        patched(frame.bytes, payload: offset, value)
    }

    /// A copy of the single frame `bytes` with bit `mask` of byte `offset` flipped (CRC not fixed).
    static func flipped(_ bytes: [UInt8], at offset: Int, _ mask: UInt8) -> [UInt8] {
        var bytes = bytes
        bytes[offset] ^= mask
        return bytes
    }

    /// The single frame `bytes` with its payload cut or extended (with `fill`) to `payloadLength`,
    /// the header's length and the CRC fixed.
    static func resized(_ bytes: [UInt8], payloadLength: Int, fill: UInt8 = 0) -> [UInt8] {
        let payload = Array(bytes[12..<(bytes.count - 4)])
        var out = Array(bytes.prefix(12)) + Array(payload.prefix(payloadLength))
        out += Array(repeating: fill, count: max(0, payloadLength - payload.count)) + [0, 0, 0, 0]
        return patchedHeader(out, at: 8, UInt32(payloadLength))
    }

    /// Writes `value` little-endian at `offset` of the payload of the single frame `bytes`, fixes the CRC.
    static func patched(_ bytes: [UInt8], payload offset: Int, _ value: some FixedWidthInteger) -> [UInt8] {
        var bytes = bytes
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (k, byte) in raw.enumerated() { bytes[12 + offset + k] = byte }
        }
        fixCRC(&bytes)
        return bytes
    }

    /// Writes `value` little-endian at `offset` of the header, then fixes the CRC.
    static func patchedHeader(_ bytes: [UInt8], at offset: Int, _ value: some FixedWidthInteger) -> [UInt8] {
        var bytes = bytes
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (k, byte) in raw.enumerated() { bytes[offset + k] = byte }
        }
        fixCRC(&bytes)
        return bytes
    }

    // MARK: - Records used by the cases

    /// A car driving on the A4 near Frankfurt: the typical record.
    static let driving = TelemetryRecord(
        timeOffsetMs: 1_000, latitudeE7: 501_109_221, longitudeE7: 86_821_267, odometerHm: 1_234_567,
        speedDkmh: 1_135, headingCdeg: 27_350, packVoltageDv: 3_968, packCurrentDa: 452, soc: 76,
        maxCellTemp: 31, minCellTemp: 27, maxAlarmLevel: 0,
        status: VehicleStatus([.ignition, .gnssFix]).withGear(4).rawValue, auxBatteryCv: 1_372, alarmFlags: 0,
        remainingRangeKm: 312)

    static let notAvailable = TelemetryRecord()

    static let minimums = TelemetryRecord(
        timeOffsetMs: 0, latitudeE7: -900_000_000, longitudeE7: -1_800_000_000, odometerHm: 0, speedDkmh: 0,
        headingCdeg: 0, packVoltageDv: 0, packCurrentDa: -32_767, soc: 0, maxCellTemp: -40, minCellTemp: -40,
        maxAlarmLevel: 0, status: 0, auxBatteryCv: 0, alarmFlags: 0, remainingRangeKm: 0)

    static let maximums = TelemetryRecord(
        timeOffsetMs: UInt32.max, latitudeE7: 900_000_000, longitudeE7: 1_800_000_000, odometerHm: 4_294_967_294,
        speedDkmh: 5_000, headingCdeg: 35_999, packVoltageDv: 15_000, packCurrentDa: 32_767, soc: 100,
        maxCellTemp: 125, minCellTemp: 125, maxAlarmLevel: 3, status: 0xFFFF, auxBatteryCv: 3_000,
        alarmFlags: 0xFFFF_FFFF, remainingRangeKm: 2_000)

    static let charging = TelemetryRecord(
        timeOffsetMs: 60_000, latitudeE7: 312_304_160, longitudeE7: 1_214_737_010, odometerHm: 88_012,
        speedDkmh: 0, headingCdeg: 9_000, packVoltageDv: 4_012, packCurrentDa: -1_500, soc: 43, maxCellTemp: 38,
        minCellTemp: 33, maxAlarmLevel: 1,
        status: VehicleStatus([.charging, .dcFastCharging, .pluggedIn, .gnssFix]).withGear(1).rawValue,
        auxBatteryCv: 1_410, alarmFlags: AlarmBit.batteryHighTemperature.mask, remainingRangeKm: 150)

    /// A deterministic series: record i of a drive, every field varying.
    static func series(_ count: Int, seed: UInt32 = 0) -> [TelemetryRecord] {
        (0..<count).map { i in
            let k = UInt32(i) &+ seed
            return TelemetryRecord(
                timeOffsetMs: k &* 1_000, latitudeE7: 501_109_221 + Int32(k % 10_000) * 37,
                longitudeE7: 86_821_267 - Int32(k % 10_000) * 53, odometerHm: 1_234_567 + k / 10,
                speedDkmh: UInt16(k % 1_300), headingCdeg: UInt16((k &* 7) % 36_000),
                packVoltageDv: UInt16(3_500 + k % 500), packCurrentDa: Int16(Int(k % 4_000) - 2_000),
                soc: UInt8(100 - k % 90), maxCellTemp: Int8(20 + Int(k % 30)), minCellTemp: Int8(10 + Int(k % 10)),
                maxAlarmLevel: UInt8(k % 4), status: UInt16(k % 512), auxBatteryCv: UInt16(1_200 + k % 300),
                alarmFlags: k % 7 == 0 ? AlarmBit.socLow.mask : 0, remainingRangeKm: UInt16(400 - k % 400))
        }
    }

    static func dtc(_ code: UInt32, _ source: DiagnosticTroubleCode.Source, _ state: UInt8) -> DiagnosticTroubleCode {
        DiagnosticTroubleCode(code: code, source: source, state: state)
    }

    // MARK: - Valid cases

    static func valid(_ name: String, _ notes: [String], _ frames: [Frame]) -> Case {
        Case(name: name, notes: notes, bytes: frames.flatMap(\.bytes), frames: frames.map(\.fields))
    }

    static func validCases() -> [Case] {
        let printable64 = String(repeating: " ~\"\\abcXYZ09", count: 6).prefix(64)
        let cases: [Case] = [
            valid(
                "hello_vehicle", ["HELLO from a vehicle, clock known"],
                [hello(Hello(clientKind: .vehicle, clientTimeMs: base, softwareVersion: "tbox-fw 3.2.1"))]),
            valid(
                "hello_gateway_empty_version", ["HELLO from a gateway, clock unknown (0), empty software version"],
                [hello(Hello(clientKind: .gateway, clientTimeMs: 0, softwareVersion: ""))]),
            valid(
                "hello_version_64_bytes", ["software version of exactly 64 printable bytes, quote and backslash"],
                [hello(Hello(clientKind: .vehicle, clientTimeMs: -1, softwareVersion: String(printable64)))]),
            {
                var frame = hello(Hello(clientKind: .vehicle, clientTimeMs: base, softwareVersion: "x"))
                frame.bytes = patched(frame, payload: 3, UInt8(0xBE))
                var c = valid("hello_reserved_nonzero", ["reserved byte 3 is 0xBE: ignored on receipt"], [frame])
                c.unlistedBytes = "HELLO payload byte 3 (reserved) is 0xBE"
                return c
            }(),
            valid(
                "hello_protocol_1_1", ["HELLO of a 1.1 client: protocol_minor 1 (byte 2, reserved in 1.0)"],
                [hello(Hello(clientKind: .vehicle, clientTimeMs: base, softwareVersion: "fw 1.1", protocolMinor: 1))]),
            valid(
                "hello_protocol_minor_255", ["a client of a far later minor version: any protocol_minor is valid"],
                [hello(Hello(clientKind: .gateway, clientTimeMs: 0, softwareVersion: "", protocolMinor: 255))]),
            valid(
                "welcome_1_1_horizon", ["1.1 WELCOME: 32 bytes, the default time horizon (7 days, 1 day) appended"],
                [
                    welcome(
                        Welcome(
                            serverTimeMs: base, maxPayload: 65_536, ackWindow: 64, heartbeatSeconds: 30,
                            idleTimeoutSeconds: 90, maxRecords: 1637,
                            horizon: AnnouncedHorizon(pastSeconds: 604_800, futureSeconds: 86_400)))
                ]),
            {
                // A later minor version appends 8 more bytes; a 1.1 receiver reads the first 32.
                let longer = welcome(
                    Welcome(
                        serverTimeMs: base, maxPayload: 1024, ackWindow: 1, heartbeatSeconds: 0,
                        idleTimeoutSeconds: 0, maxRecords: 24,
                        horizon: AnnouncedHorizon(pastSeconds: 0, futureSeconds: UInt32.max)))
                var frame = longer
                frame.bytes = resized(longer.bytes, payloadLength: 40, fill: 0x5A)
                frame.fields = frame.fields.map { $0.name == "payload_length" ? f("payload_length", 40) : $0 }
                return valid(
                    "welcome_longer_than_1_1", ["WELCOME of 40 bytes: the 8 bytes after the horizon are skipped"],
                    [frame])
            }(),
            valid(
                "welcome_defaults", ["WELCOME with the default limits"],
                [
                    welcome(
                        Welcome(
                            serverTimeMs: base + 5, maxPayload: 65_536, ackWindow: 64, heartbeatSeconds: 30,
                            idleTimeoutSeconds: 90, maxRecords: 1_637))
                ]),
            valid(
                "welcome_extremes", ["WELCOME with every field at its largest value"],
                [
                    welcome(
                        Welcome(
                            serverTimeMs: Int64.max, maxPayload: UInt32.max, ackWindow: 1_024,
                            heartbeatSeconds: UInt16.max, idleTimeoutSeconds: UInt16.max, maxRecords: UInt16.max),
                        sequence: UInt32.max)
                ]),
            valid(
                "welcome_window_one", ["smallest ack window"],
                [
                    welcome(
                        Welcome(
                            serverTimeMs: 1, maxPayload: 0, ackWindow: 1, heartbeatSeconds: 0,
                            idleTimeoutSeconds: 0, maxRecords: 0))
                ]),
            valid(
                "telemetry_one_record", ["the worked example of PROTOCOL.md section 8: one record, driving"],
                [telemetry([driving])]),
            valid(
                "telemetry_not_available", ["every field that has one carries its 'not available' value"],
                [telemetry([notAvailable])]),
            valid(
                "telemetry_minimums", ["every field at the low end of its valid range; current -3276.7 A"],
                [telemetry([minimums])]),
            valid(
                "telemetry_maximums", ["every field at the high end; reserved status and alarm bits set (ignored)"],
                [telemetry([maximums])]),
            valid(
                "telemetry_negative_current_charging", ["DC fast charging at -150.0 A (negative = charging)"],
                [telemetry([charging])]),
            valid(
                "telemetry_southern_western", ["Sao Paulo: negative latitude and longitude"],
                [
                    telemetry(
                        [TelemetryRecord(latitudeE7: -235_505_200, longitudeE7: -466_333_090, soc: 55)],
                        vin: otherVIN)
                ]),
            valid("telemetry_ten_records", ["a 10-record series, every field varying"], [telemetry(series(10))]),
            {
                var c = valid(
                    "telemetry_record_size_48", ["record_size 48: a later version's 8 extra bytes (0xEE) are skipped"],
                    [telemetry(series(3, seed: 5), recordSize: 48, filler: 0xEE)])
                c.unlistedBytes = "bytes 40-47 of each record (a later version's fields) are 0xEE"
                return c
            }(),
            {
                var c = valid(
                    "telemetry_record_size_255", ["the largest record_size: 215 extra bytes per record skipped"],
                    [telemetry([driving, charging], recordSize: 255, filler: 0xA5)])
                c.unlistedBytes = "bytes 40-254 of each record (a later version's fields) are 0xA5"
                return c
            }(),
            valid("telemetry_base_time_one", ["smallest valid base_time_ms (1)"], [telemetry([driving], base: 1)]),
            valid(
                "telemetry_timestamp_wraps",
                [
                    "base_time_ms 2^63 - 1 plus time_offset_ms 1000 wraps to -2^63 + 999 (64-bit two's",
                    "complement, PROTOCOL.md 4.3): a valid frame whose record is outside every time horizon",
                    "(rejected, not an error)",
                ],
                [telemetry([driving], base: Int64.max)]),
            {
                var frame = telemetry([driving])
                frame.bytes = patched(frame, payload: 28 + 38, UInt16(0xFFFF))
                var c = valid("telemetry_reserved_nonzero", ["the record's reserved u16 is 0xFFFF: ignored"], [frame])
                c.unlistedBytes = "record bytes 38-39 (reserved) are 0xFFFF"
                return c
            }(),
            valid(
                "telemetry_sequence_max", ["sequence 4294967295 (the last one of a connection)"],
                [telemetry([driving], sequence: UInt32.max)]),
            valid(
                "event_no_dtcs", ["EVENT with an alarm change and no DTC"],
                [event([], level: 2, flags: AlarmBit.insulation.mask | AlarmBit.socLow.mask)]),
            valid(
                "event_dtcs_each_source", ["one DTC of each source, active and cleared"],
                [
                    event(
                        [
                            dtc(0x0001_2345, .battery, 1), dtc(0xC073_00, .driveMotor, 0),
                            dtc(0xDEAD_BEEF, .engine, 1),
                            dtc(0, .other, 0),
                        ], level: 3, flags: 0x0007_FFFF)
                ]),
            valid(
                "event_level_not_available", ["max_alarm_level 0xFF (not available)"],
                [event([dtc(42, .other, 1)], level: 0xFF)]),
            valid("ack_zero", ["ACK 0: nothing stored yet"], [ack(Ack(sequence: 0))]),
            valid(
                "ack_max_with_rejected", ["ACK of the last sequence with 5 rejected records"],
                [ack(Ack(sequence: UInt32.max, rejectedRecords: 5), sequence: 9)]),
            valid(
                "error_with_reason", ["ERROR VIN_NOT_ALLOWED with a reason"],
                [error(ErrorMessage(code: .vinNotAllowed, sequence: 7, reason: "VIN is not the certificate's"))]),
            valid(
                "error_empty_reason", ["ERROR with an empty reason"],
                [error(ErrorMessage(code: .serverBusy, reason: ""))]),
            valid(
                "error_unknown_code", ["an ERROR code this version does not know is still a valid frame"],
                [error(ErrorMessage(rawCode: 0x0999, reason: "later"))]),
            valid(
                "error_utf8_reason", ["multi-byte UTF-8 reason"],
                [error(ErrorMessage(code: .internalError, reason: "Fahrzeug ungültig — 車両"))]),
            valid(
                "error_reason_512_bytes", ["the longest reason, 512 bytes"],
                [error(ErrorMessage(code: .badChecksum, sequence: 3, reason: String(repeating: "r", count: 512)))]),
            valid(
                "ping_pong", ["PING and the PONG that echoes it, in one stream"],
                [ping(0x0123_4567_89AB_CDEF), ping(0x0123_4567_89AB_CDEF, type: .pong, sequence: 5)]),
            valid("ping_extremes", ["opaque 0 and 2^64-1"], [ping(0), ping(UInt64.max, type: .pong)]),
            valid(
                "bye_every_reason", ["BYE with each defined reason, 0 to 4"],
                [bye(.normal), bye(.serverShutdown), bye(.idleTimeout), bye(.reloading), bye(.sleeping)]),
            valid(
                "two_frame_stream", ["TELEMETRY then EVENT back to back in one stream (sequence 1, 2)"],
                [telemetry([driving, charging]), event([dtc(7, .battery, 1)])]),
            valid(
                "session_opening", ["HELLO, WELCOME, TELEMETRY, ACK: a session's first four frames"],
                [
                    hello(Hello(clientKind: .vehicle, clientTimeMs: base, softwareVersion: "1.0")),
                    welcome(
                        Welcome(
                            serverTimeMs: base, maxPayload: 65_536, ackWindow: 64, heartbeatSeconds: 30,
                            idleTimeoutSeconds: 90, maxRecords: 1_637)),
                    telemetry(series(2)), ack(Ack(sequence: 1), sequence: 2),
                ]),
        ]
        return cases
    }

    /// `count` DTCs cycling through the four sources and both states.
    static func manyDTCs(_ count: Int) -> [DiagnosticTroubleCode] {
        var dtcs: [DiagnosticTroubleCode] = []
        for index in 0..<count {
            let source = DiagnosticTroubleCode.Source(rawValue: UInt8(index % 4 + 1))
            dtcs.append(dtc(UInt32(index) &* 2_654_435_761, source, UInt8(index % 2)))
        }
        return dtcs
    }

    static func largeCases() -> [Case] {
        [
            valid(
                "telemetry_max_records_1637", ["1637 records: the most that fit 65,536 bytes at the default limit"],
                [telemetry(series(1_637, seed: 100))]),
            valid(
                "event_max_dtcs_1024", ["1024 DTCs, the most an EVENT may carry"],
                [event(manyDTCs(1_024))]),
        ]
    }

    // MARK: - Invalid cases

    static func invalid(
        _ name: String, _ notes: [String], _ bytes: [UInt8], _ error: ErrorCode, frames: [Frame] = [],
        field: String? = nil, record: Int? = nil, maxPayload: Int? = nil, maxRecords: Int? = nil
    ) -> Case {
        Case(
            name: name, notes: notes, bytes: frames.flatMap(\.bytes) + bytes, frames: frames.map(\.fields),
            error: error, errorField: field, errorRecord: record, maxPayload: maxPayload, maxRecords: maxRecords)
    }

    /// A record with one field changed.
    static func with(_ change: (inout TelemetryRecord) -> Void) -> [UInt8] {
        var record = driving
        change(&record)
        return telemetry([driving, record]).bytes
    }

    static func invalidCases() -> [Case] {
        let good = telemetry([driving])
        let goodBytes = good.bytes
        var cases: [Case] = [
            invalid("bad_magic", ["first bytes 'HH'"], patchedHeader(goodBytes, at: 0, UInt16(0x4848)), .badMagic),
            invalid(
                "bad_magic_byte_order", ["magic written big-endian (0x47 0x48)"],
                patchedHeader(goodBytes, at: 0, UInt16(0x4847)), .badMagic),
            invalid(
                "bad_magic_only_two_bytes", ["two wrong bytes are enough to reject the stream"],
                [0x00, 0x00], .badMagic),
            invalid(
                "unsupported_version_0", ["header version 0"], patchedHeader(goodBytes, at: 2, UInt8(0)),
                .unsupportedVersion),
            invalid(
                "unsupported_version_2", ["header version 2"], patchedHeader(goodBytes, at: 2, UInt8(2)),
                .unsupportedVersion),
            invalid(
                "unknown_frame_type_0", ["type 0x00"], patchedHeader(ping(1).bytes, at: 3, UInt8(0)),
                .unknownFrameType),
            invalid(
                "unknown_frame_type_ff", ["type 0xFF"], patchedHeader(ping(1).bytes, at: 3, UInt8(0xFF)),
                .unknownFrameType),
            invalid(
                "bad_checksum_trailer", ["last CRC byte flipped"],
                flipped(goodBytes, at: goodBytes.count - 1, 0x01), .badChecksum),
            invalid(
                "bad_checksum_payload_bit", ["one payload bit flipped, CRC unchanged"],
                flipped(goodBytes, at: 40, 0x10), .badChecksum),
            invalid(
                "frame_too_large_header_only", ["payload_length 65,537 is rejected with only the 12 header bytes"],
                Array(patchedHeader(goodBytes, at: 8, UInt32(65_537)).prefix(12)), .frameTooLarge),
            invalid(
                "frame_too_large_max_u32", ["payload_length 0xFFFFFFFF, header only"],
                Array(patchedHeader(goodBytes, at: 8, UInt32.max).prefix(12)), .frameTooLarge),
            invalid(
                "frame_too_large_configured", ["a server configured with max_payload 64 rejects a 68-byte payload"],
                goodBytes, .frameTooLarge, maxPayload: 64),
            invalid(
                "truncated_header", ["the stream ends after 8 header bytes"], Array(goodBytes.prefix(8)),
                .truncatedFrame),
            invalid(
                "truncated_payload", ["the stream ends inside the payload"], Array(goodBytes.prefix(50)),
                .truncatedFrame),
            invalid(
                "truncated_crc", ["the stream ends before the last two CRC bytes"],
                Array(goodBytes.dropLast(2)), .truncatedFrame),
            invalid(
                "truncated_second_frame", ["a whole PING, then the stream ends inside the next frame"],
                Array(goodBytes.prefix(20)), .truncatedFrame, frames: [ping(9)]),
            invalid(
                "bad_checksum_after_valid_frame", ["a valid PING, then a frame with a bad CRC"],
                flipped(goodBytes, at: goodBytes.count - 4, 0x80), .badChecksum, frames: [ping(3)]),
            invalid(
                "telemetry_payload_too_short", ["TELEMETRY payload of 27 bytes"],
                resized(goodBytes, payloadLength: 27), .badPayloadLength),
            invalid(
                "telemetry_count_too_high", ["record_count 2 but one record's bytes"],
                patched(good, payload: 26, UInt16(2)), .recordCountMismatch),
            invalid(
                "telemetry_extra_byte", ["one byte more than 28 + 40 x count"],
                resized(goodBytes, payloadLength: 69), .recordCountMismatch),
            invalid(
                "telemetry_record_size_39", ["record_size 39, below v1's 40"],
                patched(good, payload: 25, UInt8(39)), .recordSizeTooSmall),
            invalid(
                "telemetry_record_size_0", ["record_size 0"], patched(good, payload: 25, UInt8(0)),
                .recordSizeTooSmall),
            invalid(
                "telemetry_empty_batch", ["record_count 0 with no records"],
                patched(resized(goodBytes, payloadLength: 28), payload: 26, UInt16(0)), .emptyBatch),
            invalid(
                "telemetry_too_many_records_configured", ["11 records where the server allows 10"],
                telemetry(series(11)).bytes, .tooManyRecords, maxRecords: 10),
            invalid(
                "telemetry_too_many_records_large_payload",
                [
                    "a receiver whose max_records is 1637 (configured, or announced by a server that allows it)",
                    "and whose max_payload is 131,072: 1638 records fit the payload, yet max_records is the limit.",
                    "(A Horgos server with this max_payload announces max_records 3276: PROTOCOL.md section 3.)",
                ],
                telemetry(series(1_638)).bytes, .tooManyRecords, maxPayload: 131_072, maxRecords: 1_637),
            invalid(
                "vin_with_letter_i", ["VIN containing I"], patched(good, payload: 8 + 3, UInt8(ascii: "I")),
                .invalidVIN),
            invalid(
                "vin_with_letter_o", ["VIN containing O"], patched(good, payload: 8 + 9, UInt8(ascii: "O")),
                .invalidVIN),
            invalid(
                "vin_with_letter_q", ["VIN containing Q"], patched(good, payload: 8 + 16, UInt8(ascii: "Q")),
                .invalidVIN),
            invalid(
                "vin_lower_case", ["VIN with a lower-case letter"], patched(good, payload: 8, UInt8(ascii: "l")),
                .invalidVIN),
            invalid(
                "vin_with_nul", ["VIN with a NUL byte (a 16-character VIN padded with 0)"],
                patched(good, payload: 8 + 16, UInt8(0)), .invalidVIN),
            invalid(
                "telemetry_base_time_zero", ["base_time_ms 0"], patched(good, payload: 0, Int64(0)),
                .invalidFieldValue, field: "base_time_ms", record: -1),
            invalid(
                "telemetry_base_time_negative", ["base_time_ms -1"], patched(good, payload: 0, Int64(-1)),
                .invalidFieldValue, field: "base_time_ms", record: -1),
        ]
        let fieldCases: [(String, String, (inout TelemetryRecord) -> Void)] = [
            ("latitude_too_high", "latitude", { $0.latitudeE7 = 900_000_001 }),
            ("latitude_too_low", "latitude", { $0.latitudeE7 = -900_000_001 }),
            ("longitude_too_high", "longitude", { $0.longitudeE7 = 1_800_000_001 }),
            ("longitude_too_low", "longitude", { $0.longitudeE7 = Int32.min }),
            ("speed", "speed", { $0.speedDkmh = 5_001 }),
            ("heading", "heading", { $0.headingCdeg = 36_000 }),
            ("pack_voltage", "pack_voltage", { $0.packVoltageDv = 15_001 }),
            ("soc", "soc", { $0.soc = 101 }),
            ("max_cell_temp_high", "max_cell_temp", { $0.maxCellTemp = 126 }),
            ("max_cell_temp_low", "max_cell_temp", { $0.maxCellTemp = -41 }),
            ("min_cell_temp_low", "min_cell_temp", { $0.minCellTemp = -127 }),
            ("max_alarm_level", "max_alarm_level", { $0.maxAlarmLevel = 4 }),
            ("aux_battery_voltage", "aux_battery_voltage", { $0.auxBatteryCv = 3_001 }),
            ("remaining_range", "remaining_range", { $0.remainingRangeKm = 2_001 }),
        ]
        for (name, field, change) in fieldCases {
            cases.append(
                invalid(
                    "record_\(name)", ["the second record's \(field) is out of range"], with(change),
                    .invalidFieldValue, field: field, record: 1))
        }
        let helloFrame = hello(Hello(clientKind: .vehicle, clientTimeMs: base, softwareVersion: "fw 1.0"))
        let welcomeFrame = welcome(
            Welcome(
                serverTimeMs: base, maxPayload: 65_536, ackWindow: 64,
                heartbeatSeconds: 30, idleTimeoutSeconds: 90, maxRecords: 1_637))
        let eventFrame = event([dtc(1, .battery, 1), dtc(2, .engine, 0)])
        cases += [
            invalid("hello_kind_0", ["client_kind 0"], patched(helloFrame, payload: 0, UInt8(0)), .invalidPayload),
            invalid("hello_kind_3", ["client_kind 3"], patched(helloFrame, payload: 0, UInt8(3)), .invalidPayload),
            invalid(
                "hello_protocol_version_2", ["HELLO protocol_version 2"],
                patched(helloFrame, payload: 1, UInt8(2)), .unsupportedVersion),
            invalid(
                "hello_version_not_printable", ["software version with a 0x7F byte"],
                patched(helloFrame, payload: 13 + 2, UInt8(0x7F)), .invalidPayload),
            invalid(
                "hello_version_control_char", ["software version with a newline"],
                patched(helloFrame, payload: 13, UInt8(0x0A)), .invalidPayload),
            invalid(
                "hello_version_65_bytes", ["sw_version_length 65 with 65 bytes"],
                patched(resized(helloFrame.bytes, payloadLength: 13 + 65, fill: 0x61), payload: 12, UInt8(65)),
                .invalidPayload),
            invalid(
                "hello_length_mismatch", ["sw_version_length 7 but 6 bytes follow"],
                patched(helloFrame, payload: 12, UInt8(7)), .badPayloadLength),
            invalid(
                "hello_too_short", ["HELLO payload of 12 bytes"],
                resized(helloFrame.bytes, payloadLength: 12), .badPayloadLength),
            invalid(
                "welcome_length_23", ["WELCOME payload one byte short"],
                resized(welcomeFrame.bytes, payloadLength: 23), .badPayloadLength),
            invalid(
                "welcome_length_28", ["WELCOME of 28 bytes: longer than 1.0, shorter than 1.1"],
                resized(welcomeFrame.bytes, payloadLength: 28), .badPayloadLength),
            invalid(
                "welcome_window_0", ["ack_window 0"], patched(welcomeFrame, payload: 12, UInt16(0)),
                .invalidFieldValue, field: "ack_window", record: -1),
            invalid(
                "welcome_window_1025", ["ack_window 1025"], patched(welcomeFrame, payload: 12, UInt16(1_025)),
                .invalidFieldValue, field: "ack_window", record: -1),
            invalid(
                "event_too_many_dtcs", ["dtc_count 1025 (with 1025 entries)"],
                event(manyDTCs(1_025)).bytes, .tooManyDTCs),
            invalid(
                "event_count_mismatch", ["dtc_count 3 but two entries"],
                patched(eventFrame, payload: 30, UInt16(3)), .recordCountMismatch),
            invalid(
                "event_too_short", ["EVENT payload of 31 bytes"],
                resized(eventFrame.bytes, payloadLength: 31), .badPayloadLength),
            invalid(
                "event_invalid_vin", ["EVENT VIN with a Q"], patched(eventFrame, payload: 8, UInt8(ascii: "Q")),
                .invalidVIN),
            invalid(
                "event_time_zero", ["EVENT time_ms 0"], patched(eventFrame, payload: 0, Int64(0)),
                .invalidFieldValue, field: "time_ms", record: -1),
            invalid(
                "event_alarm_level_4", ["EVENT max_alarm_level 4"], patched(eventFrame, payload: 25, UInt8(4)),
                .invalidFieldValue, field: "max_alarm_level", record: -1),
            invalid(
                "event_dtc_source_0", ["second DTC source 0"],
                patched(eventFrame, payload: 32 + 8 + 4, UInt8(0)), .invalidFieldValue, field: "dtc.source",
                record: 1),
            invalid(
                "event_dtc_source_5", ["first DTC source 5"], patched(eventFrame, payload: 32 + 4, UInt8(5)),
                .invalidFieldValue, field: "dtc.source", record: 0),
            invalid(
                "event_dtc_state_2", ["first DTC state 2"], patched(eventFrame, payload: 32 + 5, UInt8(2)),
                .invalidFieldValue, field: "dtc.state", record: 0),
            invalid(
                "ack_length_7", ["ACK payload of 7 bytes"],
                resized(ack(Ack(sequence: 1)).bytes, payloadLength: 7), .badPayloadLength),
            invalid(
                "ping_length_9", ["PING payload of 9 bytes"],
                resized(ping(1).bytes, payloadLength: 9), .badPayloadLength),
            invalid(
                "pong_length_0", ["PONG with an empty payload"],
                resized(ping(1, type: .pong).bytes, payloadLength: 0), .badPayloadLength),
            invalid(
                "bye_length_5", ["BYE payload of 5 bytes"],
                resized(bye(.normal).bytes, payloadLength: 5), .badPayloadLength),
            invalid(
                "bye_reason_5", ["BYE reason 5 (undefined)"], patched(bye(.normal), payload: 0, UInt8(5)),
                .invalidPayload),
            invalid(
                "error_length_7", ["ERROR payload of 7 bytes"],
                resized(error(ErrorMessage(code: .serverBusy, reason: "")).bytes, payloadLength: 7),
                .badPayloadLength),
            invalid(
                "error_reason_513_bytes", ["ERROR reason of 513 bytes"],
                resized(error(ErrorMessage(code: .serverBusy, reason: "")).bytes, payloadLength: 8 + 513, fill: 0x72),
                .badPayloadLength),
            invalid(
                "error_reason_not_utf8", ["ERROR reason with the byte 0xFF"],
                patched(error(ErrorMessage(code: .serverBusy, reason: "busy")), payload: 9, UInt8(0xFF)),
                .invalidPayload),
        ]
        return cases
    }

    // MARK: - Rendering

    static func render(_ cases: [Case], title: String) -> String {
        var out = "# Horgos wire protocol v1 test vectors. \(title)\n# Format: Proto/vectors/README.md. "
        out += "Generated by Tests/HorgosWireTests/Support/VectorGenerator.swift.\n"
        for c in cases {
            out += "\nvector \(c.name)\n"
            for note in c.notes { out += "note: \(note)\n" }
            if let maxPayload = c.maxPayload { out += "max_payload: \(maxPayload)\n" }
            if let maxRecords = c.maxRecords { out += "max_records: \(maxRecords)\n" }
            if let unlisted = c.unlistedBytes { out += "unlisted_bytes: \(unlisted)\n" }
            var index = 0
            while index < c.bytes.count {
                let line = c.bytes[index..<min(index + 32, c.bytes.count)]
                out += "hex: " + line.map { hex2($0) }.joined(separator: " ") + "\n"
                index += 32
            }
            for frame in c.frames {
                out += "frame\n"
                for field in frame { out += "\(field)\n" }
            }
            if let error = c.error { out += "error: \(error.name)\n" }
            if let field = c.errorField { out += "error_field: \(field)\n" }
            if let record = c.errorRecord { out += "error_record: \(record)\n" }
            out += "end\n"
        }
        return out
    }

    static let hexPairs: [String] = (0..<256).map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[byte >> 4], digits[byte & 0xF]])
    }

    static func hex2(_ byte: UInt8) -> String { hexPairs[Int(byte)] }
}

extension ErrorMessage {
    /// An ERROR with a raw code (possibly unknown to this version), for vectors.
    init(rawCode: UInt16, sequence: UInt32 = 0, reason: String) {
        self.init(code: .internalError, sequence: sequence, reason: reason)
        self.rawCode = rawCode
    }
}
