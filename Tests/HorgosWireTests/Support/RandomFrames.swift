import HorgosWire

/// A frame as plain values, comparable after a round trip.
enum FrameValue: Hashable {
    case hello(Hello)
    case welcome(Welcome)
    case telemetry(vin: VIN, baseTimeMs: Int64, recordSize: Int, records: [TelemetryRecord])
    case event(vin: VIN, timeMs: Int64, maxAlarmLevel: UInt8, alarmFlags: UInt32, dtcs: [DiagnosticTroubleCode])
    case ack(Ack)
    case error(ErrorMessage)
    case ping(UInt64)
    case pong(UInt64)
    case bye(Bye)

    /// The value of a decoded message (copies the views' contents).
    init(_ message: Message) {
        switch message {
        case .hello(let v): self = .hello(v)
        case .welcome(let v): self = .welcome(v)
        case .telemetry(let b):
            self = .telemetry(
                vin: b.vin, baseTimeMs: b.baseTimeMs, recordSize: b.recordSize,
                records: (0..<b.count).map { b[$0].record })
        case .event(let e):
            self = .event(
                vin: e.vin, timeMs: e.timeMs, maxAlarmLevel: e.maxAlarmLevel, alarmFlags: e.alarmFlags,
                dtcs: (0..<e.dtcCount).map { e[$0] })
        case .ack(let v): self = .ack(v)
        case .error(let v): self = .error(v)
        case .ping(let v): self = .ping(v)
        case .pong(let v): self = .pong(v)
        case .bye(let v): self = .bye(v)
        }
    }

    /// Appends this frame with the encoder.
    func encode(sequence: UInt32, to out: inout [UInt8]) {
        switch self {
        case .hello(let v): FrameEncoder.appendHello(v, sequence: sequence, to: &out)
        case .welcome(let v): FrameEncoder.appendWelcome(v, sequence: sequence, to: &out)
        case .telemetry(let vin, let base, let size, let records):
            FrameEncoder.appendTelemetry(
                vin: vin, baseTimeMs: base, records: records, recordSize: size,
                sequence: sequence, to: &out)
        case .event(let vin, let time, let level, let flags, let dtcs):
            FrameEncoder.appendEvent(
                vin: vin, timeMs: time, maxAlarmLevel: level, alarmFlags: flags, dtcs: dtcs,
                sequence: sequence, to: &out)
        case .ack(let v): FrameEncoder.appendAck(v, sequence: sequence, to: &out)
        case .error(let v): FrameEncoder.appendError(v, sequence: sequence, to: &out)
        case .ping(let v): FrameEncoder.appendPing(v, type: .ping, sequence: sequence, to: &out)
        case .pong(let v): FrameEncoder.appendPing(v, type: .pong, sequence: sequence, to: &out)
        case .bye(let v): FrameEncoder.appendBye(v, sequence: sequence, to: &out)
        }
    }

    var type: FrameType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .telemetry: .telemetry
        case .event: .event
        case .ack: .ack
        case .error: .error
        case .ping: .ping
        case .pong: .pong
        case .bye: .bye
        }
    }
}

/// Random valid frames of every type, from a seeded generator.
struct RandomFrames {
    var random: SeededRandom

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    static let vinAlphabet = Array("0123456789ABCDEFGHJKLMNPRSTUVWXYZ".utf8)

    mutating func int<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> T { T.random(in: range, using: &random) }
    mutating func bool() -> Bool { Bool.random(using: &random) }

    /// `value` or, one time in five, `notAvailable`.
    mutating func maybe<T>(_ value: T, or notAvailable: T) -> T { int(0...4) == 0 ? notAvailable : value }

    mutating func vin() -> VIN {
        let text = String(
            decoding: (0..<17).map { _ in Self.vinAlphabet.randomElement(using: &random)! }, as: UTF8.self)
        return VIN(text)!
    }

    mutating func record() -> TelemetryRecord {
        typealias NA = TelemetryRecord.NotAvailable
        return TelemetryRecord(
            timeOffsetMs: int(0...UInt32.max),
            latitudeE7: maybe(int(-900_000_000...900_000_000), or: NA.coordinate),
            longitudeE7: maybe(int(-1_800_000_000...1_800_000_000), or: NA.coordinate),
            odometerHm: maybe(int(0...4_294_967_294), or: NA.u32),
            speedDkmh: maybe(int(0...5_000), or: NA.u16), headingCdeg: maybe(int(0...35_999), or: NA.u16),
            packVoltageDv: maybe(int(0...15_000), or: NA.u16),
            packCurrentDa: maybe(int(-32_767...32_767), or: NA.current),
            soc: maybe(int(0...100), or: NA.u8), maxCellTemp: maybe(int(-40...125), or: NA.temperature),
            minCellTemp: maybe(int(-40...125), or: NA.temperature), maxAlarmLevel: maybe(int(0...3), or: NA.u8),
            status: int(0...UInt16.max), auxBatteryCv: maybe(int(0...3_000), or: NA.u16),
            alarmFlags: int(0...UInt32.max), remainingRangeKm: maybe(int(0...2_000), or: NA.u16))
    }

    mutating func text(maxBytes: Int, printableASCII: Bool) -> String {
        let alphabet: [String] =
            printableASCII
            ? (0x20...0x7E).map { String(UnicodeScalar(UInt8($0))) }
            : ["a", "Z", " ", "é", "—", "車", "🚗", "\u{0}", "\n"]
        var text = ""
        let target = int(0...maxBytes)
        while true {
            let next = alphabet.randomElement(using: &random)!
            if text.utf8.count + next.utf8.count > target { return text }
            text += next
        }
    }

    /// A random valid frame of `type`; `maxRecords` bounds TELEMETRY batches.
    mutating func frame(_ type: FrameType, maxRecords: Int = 20) -> FrameValue {
        switch type {
        case .hello:
            return .hello(
                Hello(
                    clientKind: bool() ? .vehicle : .gateway, clientTimeMs: int(Int64.min...Int64.max),
                    softwareVersion: text(maxBytes: 64, printableASCII: true)))
        case .welcome:
            return .welcome(
                Welcome(
                    serverTimeMs: int(Int64.min...Int64.max), maxPayload: int(0...UInt32.max),
                    ackWindow: int(1...1_024), heartbeatSeconds: int(0...UInt16.max),
                    idleTimeoutSeconds: int(0...UInt16.max), maxRecords: int(0...UInt16.max)))
        case .telemetry:
            let count = int(1...maxRecords)
            return .telemetry(
                vin: vin(), baseTimeMs: int(1...Int64.max / 2), recordSize: bool() ? 40 : int(40...255),
                records: (0..<count).map { _ in record() })
        case .event:
            let count = int(0...12)
            let dtcs = (0..<count).map { _ in
                DiagnosticTroubleCode(
                    code: int(0...UInt32.max), source: .init(rawValue: int(1...4)), state: int(0...1))
            }
            return .event(
                vin: vin(), timeMs: int(1...Int64.max), maxAlarmLevel: maybe(int(0...3), or: 0xFF),
                alarmFlags: int(0...UInt32.max), dtcs: dtcs)
        case .ack: return .ack(Ack(sequence: int(0...UInt32.max), rejectedRecords: int(0...UInt32.max)))
        case .error:
            var message = ErrorMessage(
                code: ErrorCode.allCases.randomElement(using: &random)!,
                sequence: int(0...UInt32.max), reason: text(maxBytes: 512, printableASCII: false))
            if int(0...9) == 0 { message.rawCode = int(0...UInt16.max) }
            return .error(message)
        case .ping: return .ping(int(0...UInt64.max))
        case .pong: return .pong(int(0...UInt64.max))
        case .bye: return .bye(Bye(reason: Bye.Reason(rawValue: int(0...4))!))
        }
    }

    /// A random valid frame of a random type.
    mutating func anyFrame(maxRecords: Int = 20) -> FrameValue {
        frame(FrameType.allCases.randomElement(using: &random)!, maxRecords: maxRecords)
    }
}
