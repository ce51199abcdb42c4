import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import Synchronization
import Testing

@testable import HorgosServer

/// A sink that holds submissions until the test completes them (a stalled or slow writer).
final class HeldSink: IngestSink {
    let held = Mutex<[IngestSubmission]>([])

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) { held.withLock { $0.append(submission) } }

    var count: Int { held.withLock { $0.count } }

    /// Completes every held submission as stored.
    func commitAll() {
        let all = held.withLock { held in
            defer { held.removeAll() }
            return held
        }
        for submission in all {
            let records = submission.payload.getInteger(at: submission.payload.readerIndex + 26, endianness: .little,
                                                        as: UInt16.self) ?? 0
            submission.completion(CommitOutcome(stored: Int(records), duplicates: 0, rejected: 0))
        }
    }
}

/// Storage that refuses every frame (its queue is full).
struct RefusingSink: IngestSink {
    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        throw IngestRefusal(reason: "queue full")
    }
}

struct NoObserver: SessionObserver {
    func sessionStarted(_ peer: SessionPeer) {}
    func sessionEnded(_ peer: SessionPeer?) {}
    func refused(_ refusal: SessionRefusal) {}
    func frameReceived(_ type: FrameType, region: String?, records: Int) {}
    func frameCommitted(region: String, outcome: CommitOutcome) {}
    func errorSent(_ code: ErrorCode) {}
    func ackSent() {}
}

/// Counts the read requests that reach the socket end of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite struct SessionHandlerTests {
    static let vin = VIN("LSVAU2180N2183294")!

    struct Harness {
        let channel: EmbeddedChannel
        let sink: HeldSink
        let flow: RegionFlowControl
        let reads: ReadCounter

        init(market: String = "AE", high: Int = 1 << 20, low: Int = 1 << 19,
             storage: (any IngestSink)? = nil) throws {
            sink = HeldSink()
            flow = RegionFlowControl(region: "AE", highWatermark: high, lowWatermark: low)
            reads = ReadCounter()
            let environment = SessionEnvironment(
                authorize: { _ in .success(SessionPeer(role: .vehicle, vin: SessionHandlerTests.vin, market: market)) },
                regions: ["AE": flow], sink: storage ?? sink, limits: SessionLimits(ackWindow: 64), now: { 1_700_000_000_000 },
                observer: NoObserver(), logger: Logger(label: "test"))
            channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(reads)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameChannelDecoder(maxPayload: 65_536)))
            try channel.pipeline.syncOperations.addHandler(SessionHandler(environment: environment))
            channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        }

        func send(_ bytes: [UInt8]) throws {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            try channel.writeInbound(buffer)
        }

        /// Decodes every frame the handler wrote.
        func replies() throws -> [(FrameHeader, ParsedReply)] {
            var out: [(FrameHeader, ParsedReply)] = []
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                while buffer.readableBytes > 0 {
                    let bytes = buffer.readBytes(length: buffer.readableBytes)!
                    var offset = 0
                    try bytes.withUnsafeBytes { raw in
                        while offset < raw.count {
                            let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                            let frame = try #require(try FrameDecoder().decode(rest))
                            out.append((frame.header, ParsedReply(try frame.message())))
                            offset += frame.header.frameLength
                        }
                    }
                }
            }
            return out
        }

        func hello() throws {
            var bytes: [UInt8] = []
            FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "fw 1.0"), to: &bytes)
            try send(bytes)
        }

        func telemetry(_ sequence: UInt32, vin: VIN = SessionHandlerTests.vin, records: Int = 1) -> [UInt8] {
            var bytes: [UInt8] = []
            let list = (0..<records).map { TelemetryRecord(timeOffsetMs: UInt32($0) * 1000, soc: 50) }
            FrameEncoder.appendTelemetry(vin: vin, baseTimeMs: 1_700_000_000_000 + Int64(sequence) * 100_000,
                                         records: list, sequence: sequence, to: &bytes)
            return bytes
        }
    }

    enum ParsedReply: Equatable {
        case welcome(Welcome)
        case ack(Ack)
        case error(ErrorCode?)
        case pong(UInt64)
        case bye(Bye.Reason)
        case other

        init(_ message: Message) {
            switch message {
            case .welcome(let welcome): self = .welcome(welcome)
            case .ack(let ack): self = .ack(ack)
            case .error(let error): self = .error(error.knownCode)
            case .pong(let opaque): self = .pong(opaque)
            case .bye(let bye): self = .bye(bye.reason)
            default: self = .other
            }
        }
    }

    @Test func helloGetsWelcomeAndFramesAreAckedOnlyAfterCommit() throws {
        let harness = try Harness()
        try harness.hello()
        let welcome = try harness.replies()
        #expect(welcome.count == 1)
        guard case .welcome(let values) = welcome.first?.1 else {
            Issue.record("expected WELCOME")
            return
        }
        #expect(values.ackWindow == 64)
        try harness.send(harness.telemetry(1) + harness.telemetry(2, records: 3))
        #expect(harness.sink.count == 2)
        // Nothing is acknowledged before the writer reports the commit.
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.replies().isEmpty)
        harness.sink.commitAll()
        harness.channel.embeddedEventLoop.run()
        let acks = try harness.replies().map(\.1)
        #expect(acks == [.ack(Ack(sequence: 2))])
    }

    @Test func aCorruptedFrameGetsBadChecksumAndTheConnectionCloses() throws {
        let harness = try Harness()
        try harness.hello()
        _ = try harness.replies()
        var frame = harness.telemetry(1)
        frame[40] ^= 0xFF
        try? harness.send(frame)
        harness.channel.embeddedEventLoop.run()
        let replies = try harness.replies().map(\.1)
        #expect(replies == [.error(.badChecksum)])
        #expect(harness.sink.count == 0)
        #expect(!harness.channel.isActive)
    }

    @Test func anotherVehiclesVINIsRefusedWithVinNotAllowed() throws {
        let harness = try Harness()
        try harness.hello()
        _ = try harness.replies()
        try harness.send(harness.telemetry(1, vin: VIN("LGXC16DF4M0123456")!))
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.replies().map(\.1) == [.error(.vinNotAllowed)])
        #expect(harness.sink.count == 0)
    }

    @Test func aFrameStorageRefusesGetsServerBusyAndTheConnectionCloses() throws {
        let harness = try Harness(storage: RefusingSink())
        try harness.hello()
        _ = try harness.replies()
        try harness.send(harness.telemetry(1))
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.replies().map(\.1) == [.error(.serverBusy)])
        #expect(!harness.channel.isActive)
    }

    @Test func aMarketThatIsNotARegionIsRefusedAfterTheHandshake() throws {
        let harness = try Harness(market: "US")
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.replies().map(\.1) == [.error(.unknownMarket)])
    }

    @Test func readingStopsAboveTheHighWatermarkAndResumesBelowTheLow() throws {
        // Each 1-record frame is 84 bytes: the queue passes 200 bytes at the third frame.
        let harness = try Harness(high: 200, low: 100)
        try harness.hello()
        _ = try harness.replies()
        harness.channel.read()
        let readsBefore = harness.reads.reads
        try harness.send(harness.telemetry(1) + harness.telemetry(2) + harness.telemetry(3))
        #expect(harness.flow.queuedBytes == 3 * 84)
        #expect(harness.flow.waitingSessions == 1)
        harness.channel.read()
        #expect(harness.reads.reads == readsBefore, "a read must not reach the socket while the region is full")
        harness.sink.commitAll()
        harness.channel.embeddedEventLoop.run()
        #expect(harness.flow.queuedBytes == 0)
        #expect(harness.reads.reads == readsBefore + 1, "the held read is released below the low watermark")
    }

    @Test func shutdownDrainsPendingFramesThenAcksAndSaysBye() throws {
        let harness = try Harness()
        try harness.hello()
        _ = try harness.replies()
        try harness.send(harness.telemetry(1))
        let handler = try harness.channel.pipeline.syncOperations.handler(type: SessionHandler.self)
        handler.startDraining(.serverShutdown)
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.replies().isEmpty)
        harness.sink.commitAll()
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.replies().map(\.1) == [.ack(Ack(sequence: 1)), .bye(.serverShutdown)])
        #expect(!harness.channel.isActive)
    }
}
