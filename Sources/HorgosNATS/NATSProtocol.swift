import NIOCore

/// What a NATS server sends (the client protocol, https://docs.nats.io/reference/reference-protocols/nats-protocol).
public enum NATSServerOperation: Sendable {
    /// `INFO {json}`: the server's identity and limits, at connect and when the cluster changes.
    case info(NATSServerInfo)
    /// `MSG` or `HMSG`: a message on a subscription.
    case message(NATSMessage)
    case ping
    case pong
    /// `+OK` (only in verbose mode, which Horgos does not ask for).
    case ok
    /// `-ERR 'text'`: a protocol or authorization error; the server usually closes after it.
    case error(String)
}

/// One delivered message: subject, subscription id, optional reply subject, headers and payload.
public struct NATSMessage: Sendable {
    public var subject: String
    public var sid: UInt64
    public var replyTo: String?
    /// Parsed header block (`HMSG` only).
    public var headers: NATSHeaders?
    public var payload: ByteBuffer

    public init(subject: String, sid: UInt64, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }

    /// The status code of a header-only status message (`NATS/1.0 503`, `404 No Messages`, ...).
    public var status: Int? { headers?.status }
}

/// A NATS header block: `NATS/1.0[ status[ description]]`, then `Name: value` lines.
public struct NATSHeaders: Sendable, Hashable {
    /// The inline status (`503` for no responders, `404`/`408`/`409` for pull requests), nil when none.
    public var status: Int?
    public var statusDescription: String = ""
    /// Header fields in order (names as sent; lookups ignore case).
    public var fields: [(name: String, value: String)] = []

    public init(status: Int? = nil, fields: [(String, String)] = []) {
        self.status = status
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of `name` (case-insensitive).
    public subscript(_ name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    public static func == (lhs: NATSHeaders, rhs: NATSHeaders) -> Bool {
        lhs.status == rhs.status && lhs.statusDescription == rhs.statusDescription
            && lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        for field in fields {
            hasher.combine(field.name)
            hasher.combine(field.value)
        }
    }

    /// Parses a header block (`NATS/1.0 ...\r\n` through the empty line); nil when it is not one.
    public init?(parsing bytes: ByteBufferView) {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)[...]
        guard let first = lines.popFirst(), first.hasPrefix("NATS/1.0") else { return nil }
        let rest = first.dropFirst("NATS/1.0".count).drop { $0 == " " }
        if !rest.isEmpty {
            let parts = rest.split(separator: " ", maxSplits: 1)
            status = Int(parts[0])
            statusDescription = parts.count > 1 ? String(parts[1]) : ""
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingSpaces
            let value = line[line.index(after: colon)...].trimmingSpaces
            fields.append((name: String(name), value: String(value)))
        }
    }

    /// The block's bytes: `NATS/1.0\r\n`, each `Name: value\r\n`, then `\r\n`.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("NATS/1.0")
        if let status {
            buffer.writeString(" \(status)")
            if !statusDescription.isEmpty { buffer.writeString(" " + statusDescription) }
        }
        buffer.writeStaticString("\r\n")
        for field in fields {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

/// A protocol violation by the server (or a corrupt stream): the connection is closed and reopened.
public struct NATSProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "NATS protocol error: \(reason)" }
}

/// Splits the server's byte stream into operations. Control lines end in CRLF; `MSG`/`HMSG` payloads
/// follow their control line with a byte count and a CRLF. Bounded: a control line longer than
/// `maxControlLine` or a payload larger than `maxPayload` is a protocol error (the connection closes).
public struct NATSFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = NATSServerOperation

    public let maxControlLine: Int
    public let maxPayload: Int

    public init(maxControlLine: Int = 1 << 20, maxPayload: Int = 64 << 20) {
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let operation = try Self.decodeOne(&buffer, maxControlLine: maxControlLine, maxPayload: maxPayload)
        else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(operation))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// One operation from the front of `buffer` (consumed), or nil when more bytes are needed (nothing
    /// consumed). Also used by tests without a channel.
    public static func decodeOne(
        _ buffer: inout ByteBuffer, maxControlLine: Int = 1 << 20, maxPayload: Int = 64 << 20
    ) throws(NATSProtocolError) -> NATSServerOperation? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > maxControlLine {
                throw NATSProtocolError("control line longer than \(maxControlLine) bytes")
            }
            return nil
        }
        let lineLength = newline - view.startIndex + 1  // with the LF
        if lineLength > maxControlLine { throw NATSProtocolError("control line longer than \(maxControlLine) bytes") }
        var end = newline
        if end > view.startIndex && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = view[view.startIndex..<end]
        // The operation name: up to the first space or tab.
        let nameEnd = line.firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") } ?? line.endIndex
        let name = Self.upper(line[line.startIndex..<nameEnd])
        switch name {
        case "MSG", "HMSG":
            let fields = Self.fields(line[nameEnd...])
            let hasHeaders = name == "HMSG"
            // MSG subject sid [reply] size / HMSG subject sid [reply] hdrsize size
            let counts = hasHeaders ? 2 : 1
            guard fields.count == 2 + counts || fields.count == 3 + counts else {
                throw NATSProtocolError("malformed \(name) line: \(String(decoding: line, as: UTF8.self))")
            }
            guard let sid = UInt64(fields[1]), let total = Int(fields[fields.count - 1]), total >= 0,
                total <= maxPayload
            else { throw NATSProtocolError("bad sid or size in \(String(decoding: line, as: UTF8.self))") }
            var headerBytes = 0
            if hasHeaders {
                guard let h = Int(fields[fields.count - 2]), h >= 0, h <= total else {
                    throw NATSProtocolError("bad header size in \(String(decoding: line, as: UTF8.self))")
                }
                headerBytes = h
            }
            let needed = lineLength + total + 2
            guard buffer.readableBytes >= needed else { return nil }
            let reply = fields.count == 3 + counts ? fields[2] : nil
            buffer.moveReaderIndex(forwardBy: lineLength)
            var headers: NATSHeaders?
            if hasHeaders {
                let block = buffer.readSlice(length: headerBytes)!
                guard let parsed = NATSHeaders(parsing: block.readableBytesView) else {
                    throw NATSProtocolError("HMSG header block does not start with NATS/1.0")
                }
                headers = parsed
            }
            let payload = buffer.readSlice(length: total - headerBytes)!
            guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"),
                buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n")
            else { throw NATSProtocolError("\(name) payload not followed by CRLF") }
            return .message(
                NATSMessage(subject: fields[0], sid: sid, replyTo: reply, headers: headers, payload: payload))
        case "PING":
            buffer.moveReaderIndex(forwardBy: lineLength)
            return .ping
        case "PONG":
            buffer.moveReaderIndex(forwardBy: lineLength)
            return .pong
        case "+OK":
            buffer.moveReaderIndex(forwardBy: lineLength)
            return .ok
        case "-ERR":
            var text = String(decoding: line[nameEnd...], as: UTF8.self)
            text = String(text.drop { $0 == " " })
            if text.hasPrefix("'") && text.hasSuffix("'") && text.count >= 2 {
                text = String(text.dropFirst().dropLast())
            }
            buffer.moveReaderIndex(forwardBy: lineLength)
            return .error(text)
        case "INFO":
            let json = line[nameEnd...]
            let info: NATSServerInfo
            do {
                info = try NATSServerInfo(json: Array(json))
            } catch {
                throw NATSProtocolError("INFO is not valid JSON: \(error)")
            }
            buffer.moveReaderIndex(forwardBy: lineLength)
            return .info(info)
        default:
            throw NATSProtocolError("unknown operation \(name.prefix(16))")
        }
    }

    private static func upper(_ bytes: ByteBufferView.SubSequence) -> String {
        String(decoding: bytes.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 32 : $0 }, as: UTF8.self)
    }

    private static func fields(_ bytes: ByteBufferView.SubSequence) -> [String] {
        bytes.split { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Writes client operations into a buffer (no allocation beyond the buffer's growth).
public enum NATSClientProtocol {
    /// `PUB subject [reply] size\r\npayload\r\n`, or `HPUB subject [reply] hdrsize total\r\nheaders payload\r\n`
    /// when `headers` (a complete block from `NATSHeaders.write`) is given.
    public static func writePublish(
        to buffer: inout ByteBuffer, subject: String, replyTo: String?, headers: ByteBuffer?,
        payload: UnsafeRawBufferPointer
    ) {
        let headerCount = headers?.readableBytes ?? 0
        buffer.writeStaticString(headers == nil ? "PUB " : "HPUB ")
        buffer.writeString(subject)
        if let replyTo {
            buffer.writeStaticString(" ")
            buffer.writeString(replyTo)
        }
        if headers != nil {
            buffer.writeStaticString(" ")
            writeDecimal(headerCount, to: &buffer)
        }
        buffer.writeStaticString(" ")
        writeDecimal(headerCount + payload.count, to: &buffer)
        buffer.writeStaticString("\r\n")
        if var headers { buffer.writeBuffer(&headers) }
        buffer.writeBytes(payload)
        buffer.writeStaticString("\r\n")
    }

    public static func writeSubscribe(to buffer: inout ByteBuffer, subject: String, sid: UInt64) {
        buffer.writeString("SUB \(subject) \(sid)\r\n")
    }

    public static func writeUnsubscribe(to buffer: inout ByteBuffer, sid: UInt64) {
        buffer.writeString("UNSUB \(sid)\r\n")
    }

    /// A non-negative integer in decimal ASCII.
    @inline(__always)
    public static func writeDecimal(_ value: Int, to buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }
}
