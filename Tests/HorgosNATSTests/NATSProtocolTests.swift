import HorgosNATS
import NIOCore
import NIOEmbedded
import Testing

/// The NATS client protocol codec: every server operation, split anywhere, and the client's writes
/// byte for byte (https://docs.nats.io/reference/reference-protocols/nats-protocol).
@Suite struct NATSProtocolTests {
    static func decodeAll(_ text: String, chunk: Int = .max) throws -> [NATSServerOperation] {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(NATSFrameDecoder(maxControlLine: 4096, maxPayload: 1024)))
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + chunk)
            try channel.writeInbound(ByteBuffer(bytes: bytes[index..<end]))
            index = end
        }
        var operations: [NATSServerOperation] = []
        while let operation = try channel.readInbound(as: NATSServerOperation.self) { operations.append(operation) }
        _ = try channel.finish()
        return operations
    }

    static let sample =
        "INFO {\"server_id\":\"S1\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576,"
        + "\"connect_urls\":[\"127.0.0.1:4223\"],\"jetstream\":true}\r\n"
        + "PING\r\nPONG\r\n+OK\r\n"
        + "MSG greet.joe 7 5\r\nhello\r\n"
        + "msg _INBOX.abc.12 3 reply.to 0\r\n\r\n"
        + "HMSG _INBOX.x.p.42 9 22 27\r\nNATS/1.0\r\nA-B: c d\r\n\r\nhello\r\n"
        + "HMSG _INBOX.x.f.AE 2 $JS.ACK.S.C.1.2.3.4.5 32 32\r\nNATS/1.0 408 Request Timeout\r\n\r\n\r\n"
        + "-ERR 'Authorization Violation'\r\n"

    @Test(arguments: [Int.max, 1, 2, 7, 13])
    func everyServerOperationIsDecodedWhateverTheChunking(chunk: Int) throws {
        let operations = try Self.decodeAll(Self.sample, chunk: chunk)
        #expect(operations.count == 9)
        guard case .info(let info) = operations[0] else { Issue.record("not INFO: \(operations[0])"); return }
        #expect(info.serverID == "S1" && info.version == "2.9.10" && info.headers && info.jetStream)
        #expect(info.maxPayload == 1_048_576 && info.connectURLs == ["127.0.0.1:4223"] && !info.tlsRequired)
        guard case .ping = operations[1], case .pong = operations[2], case .ok = operations[3] else {
            Issue.record("\(operations[1...3])")
            return
        }
        guard case .message(let msg) = operations[4] else { Issue.record("\(operations[4])"); return }
        #expect(msg.subject == "greet.joe" && msg.sid == 7 && msg.replyTo == nil && msg.headers == nil)
        #expect(String(buffer: msg.payload) == "hello")
        guard case .message(let empty) = operations[5] else { Issue.record("\(operations[5])"); return }
        #expect(empty.subject == "_INBOX.abc.12" && empty.sid == 3 && empty.replyTo == "reply.to")
        #expect(empty.payload.readableBytes == 0)
        guard case .message(let hmsg) = operations[6] else { Issue.record("\(operations[6])"); return }
        #expect(hmsg.headers?["a-b"] == "c d" && hmsg.headers?.status == nil && String(buffer: hmsg.payload) == "hello")
        guard case .message(let status) = operations[7] else { Issue.record("\(operations[7])"); return }
        #expect(status.status == 408 && status.headers?.statusDescription == "Request Timeout")
        #expect(status.replyTo == "$JS.ACK.S.C.1.2.3.4.5" && status.payload.readableBytes == 0)
        guard case .error(let text) = operations[8] else { Issue.record("\(operations[8])"); return }
        #expect(text == "Authorization Violation")
    }

    @Test func anIncompleteMessageWaitsForItsBytesAndConsumesNothing() throws {
        var buffer = ByteBuffer(string: "MSG a 1 10\r\n01234")
        #expect(try NATSFrameDecoder.decodeOne(&buffer) == nil)
        #expect(buffer.readableBytes == 17)
        buffer.writeString("56789\r\n")
        guard case .message(let message) = try NATSFrameDecoder.decodeOne(&buffer) else {
            Issue.record("no message")
            return
        }
        #expect(String(buffer: message.payload) == "0123456789")
        #expect(buffer.readableBytes == 0)
    }

    @Test(arguments: [
        ("MSG a 1 2000\r\n", "size"),  // over maxPayload (1024)
        ("BOGUS x\r\n", "unknown"),
        ("MSG a b 2\r\nhi\r\n", "sid"),
        ("MSG a 1 2\r\nhiXY", "CRLF"),
        ("HMSG a 1 5 3\r\nNATS/1.0\r\n\r\n", "header size"),
        ("INFO {not json\r\n", "JSON"),
    ])
    func malformedInputIsANamedProtocolError(input: String, word: String) throws {
        var buffer = ByteBuffer(string: input)
        #expect {
            _ = try NATSFrameDecoder.decodeOne(&buffer, maxControlLine: 4096, maxPayload: 1024)
        } throws: { error in
            "\(error)".contains(word)
        }
    }

    @Test func aControlLineLongerThanTheLimitIsRefusedBeforeItsEnd() throws {
        var buffer = ByteBuffer(string: "INFO " + String(repeating: "x", count: 5000))
        #expect(throws: NATSProtocolError.self) { _ = try NATSFrameDecoder.decodeOne(&buffer, maxControlLine: 4096) }
    }

    @Test func publishesAreWrittenByteForByte() {
        var buffer = ByteBuffer()
        Array("hello".utf8).withUnsafeBytes {
            NATSClientProtocol.writePublish(to: &buffer, subject: "a.b", replyTo: nil, headers: nil, payload: $0)
        }
        #expect(String(buffer: buffer) == "PUB a.b 5\r\nhello\r\n")
        buffer.clear()
        var headers = ByteBuffer()
        NATSHeaders(fields: [("Nats-Msg-Id", "n1:42")]).write(to: &headers)
        #expect(String(buffer: headers) == "NATS/1.0\r\nNats-Msg-Id: n1:42\r\n\r\n")
        Array("xy".utf8).withUnsafeBytes {
            NATSClientProtocol.writePublish(
                to: &buffer, subject: "s", replyTo: "_INBOX.r.1", headers: headers, payload: $0)
        }
        #expect(String(buffer: buffer) == "HPUB s _INBOX.r.1 32 34\r\nNATS/1.0\r\nNats-Msg-Id: n1:42\r\n\r\nxy\r\n")
    }

    @Test(arguments: [0, 7, 10, 99, 1000, 123_456_789, Int(Int32.max)])
    func decimalsAreWrittenAsText(value: Int) {
        var buffer = ByteBuffer()
        NATSClientProtocol.writeDecimal(value, to: &buffer)
        #expect(String(buffer: buffer) == String(value))
    }

    @Test func serverURLsParseWithSchemesCredentialsAndDefaults() {
        let plain = NATSServerAddress(parsing: "nats://10.0.0.1:4222")
        #expect(plain?.host == "10.0.0.1" && plain?.port == 4222 && plain?.tls == false)
        let tls = NATSServerAddress(parsing: "tls://user:p%40ss@nats.example.com:7422")
        #expect(tls?.host == "nats.example.com" && tls?.port == 7422 && tls?.tls == true)
        #expect(tls?.user == "user" && tls?.password == "p@ss")
        #expect(tls?.description == "tls://nats.example.com:7422", "no credentials in logs")
        let token = NATSServerAddress(parsing: "nats://s3cret@h")
        #expect(token?.token == "s3cret" && token?.port == 4222)
        #expect(NATSServerAddress(parsing: "[::1]:4223")?.host == "::1")
        #expect(NATSServerAddress(parsing: "http://h:1") == nil)
        #expect(NATSServerAddress(parsing: "h:99999") == nil)
        #expect(NATSServerAddress(parsing: "") == nil)
    }

    @Test func publishAcksAreReadWithoutFoundation() {
        func message(_ payload: String, headers: NATSHeaders? = nil) -> NATSMessage {
            NATSMessage(
                subject: "_INBOX.x.p.1", sid: 1, replyTo: nil, headers: headers, payload: ByteBuffer(string: payload))
        }
        #expect(
            JetStreamPublishAck.parse(message("{\"stream\":\"HORGOS\",\"seq\":1234}"))
                == .stored(sequence: 1234, duplicate: false))
        #expect(
            JetStreamPublishAck.parse(message("{\"stream\":\"HORGOS\",\"seq\":7,\"duplicate\":true}"))
                == .stored(sequence: 7, duplicate: true))
        // What nats-server 2.9.10 sends, byte for byte.
        #expect(
            JetStreamPublishAck.parse(message("{\"stream\":\"T\", \"seq\":1}"))
                == .stored(sequence: 1, duplicate: false))
        #expect(
            JetStreamPublishAck.parse(message("{\"stream\":\"T\", \"seq\":1,\"duplicate\": true}"))
                == .stored(sequence: 1, duplicate: true))
        guard
            case .failed(let error) = JetStreamPublishAck.parse(
                message(
                    "{\"error\":{\"code\":503,\"err_code\":10077,"
                        + "\"description\":\"JetStream system temporarily unavailable\"}}"))
        else {
            Issue.record("an error answer was read as stored")
            return
        }
        #expect(error.code == 503 && error.errorCode == 10077)
        guard case .failed(let noResponders) = JetStreamPublishAck.parse(message("", headers: NATSHeaders(status: 503)))
        else {
            Issue.record("no responders was read as stored")
            return
        }
        #expect(noResponders.code == 503)
    }

    @Test func ackSubjectsGiveTheSequencesAndWhatIsPending() {
        let v1 = JetStreamAckSubject("$JS.ACK.HORGOS.horgos_b_AE.1.2044.17.1700000000000000000.3")
        #expect(v1?.streamSequence == 2044 && v1?.consumerSequence == 17 && v1?.pending == 3 && v1?.delivered == 1)
        let v2 = JetStreamAckSubject("$JS.ACK.domain.hash.HORGOS.c.2.10.9.1700000000000000000.0.token")
        #expect(v2?.delivered == 2 && v2?.streamSequence == 10 && v2?.consumerSequence == 9 && v2?.pending == 0)
        #expect(JetStreamAckSubject("$JS.ACK.S.C.1") == nil)
        #expect(JetStreamAckSubject("_INBOX.x") == nil)
    }
}
