import Foundation
import NIOCore

/// An error JetStream's API answered (`{"error":{"code":..,"err_code":..,"description":..}}`), or a
/// status message (`503` no responders: no stream or no leader listens).
public struct JetStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var errorCode: Int
    public var text: String

    public init(code: Int, errorCode: Int = 0, text: String) {
        self.code = code
        self.errorCode = errorCode
        self.text = text
    }

    public var description: String { "JetStream error \(code)/\(errorCode): \(text)" }

    /// The stream does not exist (`err_code` 10059).
    public var isStreamNotFound: Bool { errorCode == 10059 || (code == 404 && text.contains("stream not found")) }
    /// The consumer does not exist (`err_code` 10014).
    public var isConsumerNotFound: Bool { errorCode == 10014 }
}

/// The stream settings Horgos creates a stream with (a subset of JetStream's stream configuration).
public struct JetStreamStreamConfiguration: Sendable, Hashable, Codable {
    public var name: String
    public var subjects: [String]
    public var retention = "limits"
    public var storage = "file"
    public var numReplicas: Int
    /// Nanoseconds; 0 = unlimited.
    public var maxAge: Int64
    /// -1 = unlimited.
    public var maxBytes: Int64
    public var maxMsgs: Int64 = -1
    public var discard = "old"
    /// Nanoseconds: publishes with a `Nats-Msg-Id` seen within this window are dropped as duplicates.
    public var duplicateWindow: Int64

    enum CodingKeys: String, CodingKey {
        case name, subjects, retention, storage, discard
        case numReplicas = "num_replicas"
        case maxAge = "max_age"
        case maxBytes = "max_bytes"
        case maxMsgs = "max_msgs"
        case duplicateWindow = "duplicate_window"
    }

    public init(
        name: String, subjects: [String], numReplicas: Int, maxAge: Int64, maxBytes: Int64, duplicateWindow: Int64
    ) {
        self.name = name
        self.subjects = subjects
        self.numReplicas = numReplicas
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.duplicateWindow = duplicateWindow
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        subjects = try c.decodeIfPresent([String].self, forKey: .subjects) ?? []
        retention = try c.decodeIfPresent(String.self, forKey: .retention) ?? "limits"
        storage = try c.decodeIfPresent(String.self, forKey: .storage) ?? "file"
        numReplicas = try c.decodeIfPresent(Int.self, forKey: .numReplicas) ?? 1
        maxAge = try c.decodeIfPresent(Int64.self, forKey: .maxAge) ?? 0
        maxBytes = try c.decodeIfPresent(Int64.self, forKey: .maxBytes) ?? -1
        maxMsgs = try c.decodeIfPresent(Int64.self, forKey: .maxMsgs) ?? -1
        discard = try c.decodeIfPresent(String.self, forKey: .discard) ?? "old"
        duplicateWindow = try c.decodeIfPresent(Int64.self, forKey: .duplicateWindow) ?? 0
    }
}

/// What `STREAM.INFO` / `STREAM.CREATE` answer.
public struct JetStreamStreamInfo: Sendable, Hashable, Decodable {
    public struct State: Sendable, Hashable, Decodable {
        public var messages: Int64
        public var bytes: Int64
        public var firstSeq: UInt64
        public var lastSeq: UInt64

        enum CodingKeys: String, CodingKey {
            case messages, bytes
            case firstSeq = "first_seq"
            case lastSeq = "last_seq"
        }
    }

    public struct Cluster: Sendable, Hashable, Decodable {
        public var leader: String?
    }

    public var config: JetStreamStreamConfiguration
    public var state: State
    public var cluster: Cluster?
}

/// A durable pull consumer's settings (what Horgos's follower creates).
public struct JetStreamConsumerConfiguration: Sendable, Hashable, Encodable {
    public var durableName: String
    public var filterSubject: String
    public var deliverPolicy = "all"
    /// `all`: acknowledging sequence N acknowledges everything before it (the follower applies in order).
    public var ackPolicy = "all"
    /// Nanoseconds until an unacknowledged message is delivered again.
    public var ackWait: Int64
    public var maxAckPending: Int
    public var maxWaiting = 512
    public var maxDeliver = -1
    public var replayPolicy = "instant"

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name"
        case filterSubject = "filter_subject"
        case deliverPolicy = "deliver_policy"
        case ackPolicy = "ack_policy"
        case ackWait = "ack_wait"
        case maxAckPending = "max_ack_pending"
        case maxWaiting = "max_waiting"
        case maxDeliver = "max_deliver"
        case replayPolicy = "replay_policy"
    }

    public init(durableName: String, filterSubject: String, ackWait: Int64, maxAckPending: Int) {
        self.durableName = durableName
        self.filterSubject = filterSubject
        self.ackWait = ackWait
        self.maxAckPending = maxAckPending
    }
}

/// JetStream's management API over a `NATSConnection` (`$JS.API.*` requests with JSON bodies).
public struct JetStreamContext: Sendable {
    public let connection: NATSConnection
    public var timeout: TimeAmount

    public init(connection: NATSConnection, timeout: TimeAmount = .seconds(5)) {
        self.connection = connection
        self.timeout = timeout
    }

    /// Sends `body` to `$JS.API.<api>` and returns the JSON answer, or throws its `error`.
    public func call(_ api: String, body: [UInt8]) async throws -> [UInt8] {
        let reply = try await connection.request("$JS.API." + api, payload: body, timeout: timeout).get()
        if let status = reply.status, status >= 300 {
            throw JetStreamError(code: status, text: reply.headers?.statusDescription ?? "status \(status)")
        }
        let bytes = Array(reply.payload.readableBytesView)
        if let error = Self.apiError(bytes) { throw error }
        return bytes
    }

    /// The `error` object of an API answer, if any.
    static func apiError(_ bytes: [UInt8]) -> JetStreamError? {
        struct Envelope: Decodable {
            struct Failure: Decodable {
                var code: Int
                var errCode: Int?
                var description: String?
                enum CodingKeys: String, CodingKey {
                    case code, description
                    case errCode = "err_code"
                }
            }
            var error: Failure?
        }
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(bytes)), let failure = envelope.error
        else { return nil }
        return JetStreamError(code: failure.code, errorCode: failure.errCode ?? 0, text: failure.description ?? "")
    }

    /// The stream's info, or nil when it does not exist.
    public func streamInfo(_ name: String) async throws -> JetStreamStreamInfo? {
        do {
            let bytes = try await call("STREAM.INFO.\(name)", body: [])
            return try JSONDecoder().decode(JetStreamStreamInfo.self, from: Data(bytes))
        } catch let error as JetStreamError where error.isStreamNotFound {
            return nil
        }
    }

    /// Creates the stream.
    public func createStream(_ configuration: JetStreamStreamConfiguration) async throws -> JetStreamStreamInfo {
        let body = Array(try JSONEncoder().encode(configuration))
        let bytes = try await call("STREAM.CREATE.\(configuration.name)", body: body)
        return try JSONDecoder().decode(JetStreamStreamInfo.self, from: Data(bytes))
    }

    /// The stream's info, creating it first when it does not exist; `created` says which.
    public func ensureStream(
        _ configuration: JetStreamStreamConfiguration
    ) async throws -> (info: JetStreamStreamInfo, created: Bool) {
        if let info = try await streamInfo(configuration.name) { return (info, false) }
        do {
            return (try await createStream(configuration), true)
        } catch let error as JetStreamError where error.errorCode == 10058 {
            // Another node created it a moment ago ("stream name already in use").
            guard let info = try await streamInfo(configuration.name) else { throw error }
            return (info, false)
        }
    }

    /// Creates (or finds, with the same settings) a durable pull consumer.
    public func createDurableConsumer(stream: String, _ configuration: JetStreamConsumerConfiguration) async throws {
        struct Request: Encodable {
            var streamName: String
            var config: JetStreamConsumerConfiguration
            enum CodingKeys: String, CodingKey {
                case streamName = "stream_name"
                case config
            }
        }
        let body = Array(try JSONEncoder().encode(Request(streamName: stream, config: configuration)))
        _ = try await call("CONSUMER.DURABLE.CREATE.\(stream).\(configuration.durableName)", body: body)
    }

    /// Deletes a consumer (tests; an operator retiring a follower).
    public func deleteConsumer(stream: String, durable: String) async throws {
        _ = try await call("CONSUMER.DELETE.\(stream).\(durable)", body: [])
    }

    /// The subject a pull request for `durable` goes to.
    public static func nextSubject(stream: String, durable: String) -> String {
        "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(durable)"
    }
}

/// JetStream's answer to a publish with a reply subject (`PubAck`), read without Foundation: the fast
/// path of every published entry.
public enum JetStreamPublishAck: Sendable, Hashable {
    /// Stored at `sequence`; `duplicate` when the `Nats-Msg-Id` was seen within the duplicate window
    /// (stored earlier, not again).
    case stored(sequence: UInt64, duplicate: Bool)
    /// Not stored: an API error (`503` no leader, a wrong subject, ...) or a status (no responders).
    case failed(JetStreamError)

    /// Reads a reply to a publish.
    public static func parse(_ message: NATSMessage) -> JetStreamPublishAck {
        if let status = message.status, message.payload.readableBytes == 0 || status >= 300 {
            return .failed(JetStreamError(code: status, text: message.headers?.statusDescription ?? "no responders"))
        }
        let view = message.payload.readableBytesView
        if Self.find(view, "\"error\"") != nil {
            return .failed(
                JetStreamContext.apiError(Array(view))
                    ?? JetStreamError(code: 500, text: String(decoding: view, as: UTF8.self)))
        }
        guard let seqAt = Self.find(view, "\"seq\":") else {
            return .failed(
                JetStreamError(code: 500, text: "not a PubAck: " + String(decoding: view.prefix(120), as: UTF8.self)))
        }
        var index = seqAt
        while index < view.endIndex && view[index] == UInt8(ascii: " ") { index += 1 }
        var sequence: UInt64 = 0
        while index < view.endIndex, view[index] >= UInt8(ascii: "0"), view[index] <= UInt8(ascii: "9") {
            sequence = sequence &* 10 &+ UInt64(view[index] - UInt8(ascii: "0"))
            index += 1
        }
        // nats-server 2.9 writes `"duplicate": true` (with a space); later versions without.
        var duplicate = false
        if var at = Self.find(view, "\"duplicate\":") {
            while at < view.endIndex && view[at] == UInt8(ascii: " ") { at += 1 }
            duplicate = at < view.endIndex && view[at] == UInt8(ascii: "t")
        }
        return .stored(sequence: sequence, duplicate: duplicate)
    }

    /// The index just after the first occurrence of `needle` in `view`.
    static func find(_ view: ByteBufferView, _ needle: StaticString) -> ByteBufferView.Index? {
        let pattern = UnsafeRawBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
        guard pattern.count <= view.count else { return nil }
        var start = view.startIndex
        let last = view.endIndex - pattern.count
        while start <= last {
            if view[start] == pattern[0] {
                var match = true
                for offset in 1..<pattern.count where view[start + offset] != pattern[offset] {
                    match = false
                    break
                }
                if match { return start + pattern.count }
            }
            start += 1
        }
        return nil
    }
}

/// The reply subject JetStream delivers a consumer's message with:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>` (2.9), or,
/// in later servers, with a domain and account hash before the stream and a token after the numbers.
public struct JetStreamAckSubject: Sendable, Hashable {
    public var subject: String
    public var delivered: UInt64
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    public var timestampNs: Int64
    /// Messages left for the consumer after this one.
    public var pending: UInt64

    public init?(_ subject: String) {
        let tokens = subject.split(separator: ".")
        guard tokens[0] == "$JS", tokens.count > 1, tokens[1] == "ACK" else { return nil }
        // v1 (9 tokens, nats-server 2.9): $JS.ACK.<stream>.<consumer>.<5 numbers>; v2 (12 tokens, later
        // servers): $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<5 numbers>.<token>.
        let first: Int
        switch tokens.count {
        case 9: first = 4
        case 11, 12: first = 6
        default: return nil
        }
        guard let delivered = UInt64(tokens[first]), let stream = UInt64(tokens[first + 1]),
            let consumer = UInt64(tokens[first + 2]), let time = Int64(tokens[first + 3]),
            let pending = UInt64(tokens[first + 4])
        else { return nil }
        self.subject = subject
        self.delivered = delivered
        self.streamSequence = stream
        self.consumerSequence = consumer
        self.timestampNs = time
        self.pending = pending
    }
}
