import Foundation
import HorgosWire

/// One block of `Proto/vectors/sessions.txt`: what a client sends and what the server answers
/// (format: `Proto/vectors/README.md`, "Session traces").
///
/// Shared by the trace test against the session handler (HorgosServerTests) and the sample run
/// against the real daemon over TLS (HorgosEndToEndTests), so both read the file the same way.
public struct SessionTrace: Sendable, CustomStringConvertible {
    /// Who the certificate says the client is.
    public struct Peer: Sendable, Hashable {
        public var isGateway: Bool
        public var vin: String?
        public var market: String
    }

    /// One line of the trace, in order.
    public enum Step: Sendable, Hashable {
        /// The client writes these bytes (every `client:` line since the last step, concatenated).
        case send([UInt8])
        /// Storage commits the data frame with this sequence.
        case commit(UInt32)
        /// The operator stops the server.
        case shutdown
        /// `idle_timeout_seconds` passed without a frame from the client.
        case idleTimeout
        /// The client ends its stream (TLS close_notify or TCP FIN).
        case clientEOF
        /// The handshake timeout passes before a HELLO was accepted.
        case handshakeTimeout
        /// The operator revokes the client's certificate while the session is open (a reload).
        case revoke
        /// The next frame the server sends: its type name and the values that must match.
        case server(type: String, fields: [String: String])
        /// The server has closed the connection, having sent nothing beyond the frames listed.
        case closed
    }

    public var name: String
    public var notes: [String] = []
    public var ackWindow: Int?
    public var maxPayload: Int?
    public var peer = Peer(isGateway: false, vin: "LSVAU2180N2183294", market: "AE")
    /// `peer: refused CODE`: the certificate passed the handshake but the server's identity checks
    /// refuse it with this ERROR code (CERTIFICATE_REVOKED, IDENTITY_INVALID).
    public var refusal: String?
    public var storageRefuses = false
    public var clockMs: Int64 = 1_700_000_000_000
    public var steps: [Step] = []

    public var description: String { "trace \(name)" }

    /// The directory of the contract files.
    public static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Proto/vectors")
    }

    /// Every trace of `Proto/vectors/sessions.txt`.
    public static func loadAll() throws -> [SessionTrace] {
        let text = try String(contentsOf: directory.appendingPathComponent("sessions.txt"), encoding: .utf8)
        return try parse(text)
    }

    /// Parses trace text; any line the format does not define is an error.
    public static func parse(_ text: String) throws -> [SessionTrace] {
        var traces: [SessionTrace] = []
        var current: SessionTrace?
        var pending: [UInt8] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let number = index + 1
            func fail(_ why: String) -> SessionTraceError { SessionTraceError(line: number, reason: why) }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("trace ") {
                guard current == nil else { throw fail("trace inside a trace (missing end)") }
                let name = String(line.dropFirst(6))
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw fail("bad trace name")
                }
                current = SessionTrace(name: name)
                continue
            }
            guard var trace = current else { throw fail("line outside a trace: \(line)") }
            if line.hasPrefix("client:") {
                for pair in line.dropFirst(7).split(separator: " ") {
                    guard pair.count == 2, let byte = UInt8(pair, radix: 16) else { throw fail("bad hex \(pair)") }
                    pending.append(byte)
                }
                current = trace
                continue
            }
            if !pending.isEmpty && line != "send" { throw fail("client bytes not followed by send") }
            switch line {
            case "send":
                guard !pending.isEmpty else { throw fail("send without client bytes") }
                trace.steps.append(.send(pending))
                pending = []
            case "shutdown": trace.steps.append(.shutdown)
            case "idle_timeout": trace.steps.append(.idleTimeout)
            case "client_eof": trace.steps.append(.clientEOF)
            case "handshake_timeout": trace.steps.append(.handshakeTimeout)
            case "revoke": trace.steps.append(.revoke)
            case "closed": trace.steps.append(.closed)
            case "storage: refuses": trace.storageRefuses = true
            case "end":
                traces.append(trace)
                current = nil
                continue
            default:
                let (key, value) = try split(line, fail)
                switch key {
                case "note": trace.notes.append(value)
                case "commit":
                    guard let sequence = UInt32(value) else { throw fail("bad commit \(value)") }
                    trace.steps.append(.commit(sequence))
                case "clock": trace.clockMs = try integer(value, fail)
                case "limits":
                    for (name, number) in try pairs(value, fail) {
                        switch name {
                        case "ack_window": trace.ackWindow = Int(try integer(number, fail))
                        case "max_payload": trace.maxPayload = Int(try integer(number, fail))
                        default: throw fail("unknown limit \(name)")
                        }
                    }
                case "peer":
                    let words = value.split(separator: " ").map(String.init)
                    switch (words.first, words.count) {
                    case ("vehicle", 3): trace.peer = Peer(isGateway: false, vin: words[1], market: words[2])
                    case ("gateway", 2): trace.peer = Peer(isGateway: true, vin: nil, market: words[1])
                    case ("refused", 2) where ErrorCode(name: words[1]) != nil: trace.refusal = words[1]
                    default: throw fail("peer is `vehicle VIN MARKET` or `gateway MARKET`")
                    }
                case "server":
                    let words = value.split(separator: " ", maxSplits: 1).map(String.init)
                    guard let type = words.first, ServerFrame.typeNames.values.contains(type) else {
                        throw fail("unknown frame type in \(value)")
                    }
                    let fields = try words.count > 1 ? pairs(words[1], fail) : []
                    trace.steps.append(.server(type: type, fields: Dictionary(uniqueKeysWithValues: fields)))
                default: throw fail("unknown line: \(line)")
                }
            }
            current = trace
        }
        if current != nil { throw SessionTraceError(line: 0, reason: "last trace has no end") }
        return traces
    }

    private static func split(_ line: String, _ fail: (String) -> SessionTraceError) throws -> (String, String) {
        guard let colon = line.firstIndex(of: ":") else { throw fail("unknown line: \(line)") }
        return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }

    private static func pairs(_ text: String, _ fail: (String) -> SessionTraceError) throws -> [(String, String)] {
        try text.split(separator: " ").map { word in
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw fail("expected name=value, got \(word)") }
            return (parts[0], parts[1])
        }
    }

    private static func integer(_ text: String, _ fail: (String) -> SessionTraceError) throws -> Int64 {
        guard let value = Int64(text) else { throw fail("not an integer: \(text)") }
        return value
    }
}

/// A line of `sessions.txt` the format does not allow.
public struct SessionTraceError: Error, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "sessions.txt line \(line): \(reason)" }
}

/// The values of a server frame under the names `sessions.txt` uses (those of the vector files).
public enum ServerFrame {
    public static let typeNames: [FrameType: String] = [
        .hello: "HELLO", .welcome: "WELCOME", .telemetry: "TELEMETRY", .event: "EVENT", .ack: "ACK",
        .error: "ERROR", .ping: "PING", .pong: "PONG", .bye: "BYE",
    ]

    /// Decodes every whole frame of `bytes` into (type name, values); throws on a malformed frame.
    public static func decodeAll(_ bytes: [UInt8]) throws -> [(type: String, fields: [String: String])] {
        var out: [(type: String, fields: [String: String])] = []
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                guard let frame = try FrameDecoder(maxPayload: 1 << 20).decode(rest) else {
                    throw SessionTraceError(line: 0, reason: "server sent a partial frame")
                }
                out.append((typeNames[frame.header.type]!, try fields(frame)))
                offset += frame.header.frameLength
            }
        }
        return out
    }

    static func fields(_ frame: FrameView) throws -> [String: String] {
        var fields: [String: String] = [
            "sequence": "\(frame.header.sequence)", "payload_length": "\(frame.header.payloadLength)",
        ]
        switch try frame.message() {
        case .welcome(let w):
            fields["server_time_ms"] = "\(w.serverTimeMs)"
            fields["max_payload"] = "\(w.maxPayload)"
            fields["ack_window"] = "\(w.ackWindow)"
            fields["heartbeat_seconds"] = "\(w.heartbeatSeconds)"
            fields["idle_timeout_seconds"] = "\(w.idleTimeoutSeconds)"
            fields["max_records"] = "\(w.maxRecords)"
            if let horizon = w.horizon {
                fields["horizon_past_seconds"] = "\(horizon.pastSeconds)"
                fields["horizon_future_seconds"] = "\(horizon.futureSeconds)"
            }
        case .ack(let a):
            fields["ack_sequence"] = "\(a.sequence)"
            fields["rejected_records"] = "\(a.rejectedRecords)"
        case .error(let e):
            fields["code"] = e.knownCode?.name ?? "?"
            fields["error_sequence"] = "\(e.sequence)"
            fields["reason"] = e.reason
        case .ping(let opaque), .pong(let opaque):
            fields["opaque"] = "\(opaque)"
        case .bye(let b):
            fields["reason"] = "\(b.reason.rawValue)"
        case .hello, .telemetry, .event:
            break
        }
        return fields
    }

    /// The listed values that differ from the frame's (empty: it matches).
    public static func mismatches(
        expected: (type: String, fields: [String: String]), actual: (type: String, fields: [String: String])
    ) -> [String] {
        guard expected.type == actual.type else { return ["type \(actual.type), expected \(expected.type)"] }
        return expected.fields.sorted { $0.key < $1.key }.compactMap { name, value in
            actual.fields[name] == value ? nil : "\(name) = \(actual.fields[name] ?? "absent"), expected \(value)"
        }
    }
}
