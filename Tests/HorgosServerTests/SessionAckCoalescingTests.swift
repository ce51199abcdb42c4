import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOTLS
import Testing

@testable import HorgosServer

/// ACKs are written once per session per burst of completions (issue 11, item 8).
@Suite struct SessionAckCoalescingTests {
    static let vin = SessionHandlerTests.vin

    /// Sessions sharing one event loop, one sink and one commit inbox, as on a daemon's loop.
    struct Sessions {
        let loop = EmbeddedEventLoop()
        let sink = HeldSink()
        let flow = RegionFlowControl(region: "AE", highWatermark: 1 << 20, lowWatermark: 1 << 19)
        var channels: [EmbeddedChannel] = []

        init(count: Int, storage: (any IngestSink)? = nil) throws {
            let environment = SessionEnvironment(
                authorize: { _ in .success(SessionPeer(role: .vehicle, vin: SessionAckCoalescingTests.vin, market: "AE")) },
                regions: ["AE": flow], sink: storage ?? sink, limits: SessionLimits(ackWindow: 64), now: { 1_700_000_000_000 },
                observer: NoObserver(), logger: Logger(label: "test"))
            for _ in 0..<count {
                let channel = EmbeddedChannel(loop: loop)
                try channel.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(FrameChannelDecoder(maxPayload: 65_536)))
                try channel.pipeline.syncOperations.addHandler(SessionHandler(environment: environment))
                channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
                var hello: [UInt8] = []
                FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "t"), to: &hello)
                try channel.writeInbound(channel.allocator.buffer(bytes: hello))
                _ = try channel.readOutbound(as: ByteBuffer.self)  // WELCOME
                channels.append(channel)
            }
        }

        func frame(_ sequence: UInt32) -> ByteBuffer {
            var bytes: [UInt8] = []
            FrameEncoder.appendTelemetry(
                vin: SessionAckCoalescingTests.vin, baseTimeMs: 1_700_000_000_000 + Int64(sequence) * 1000,
                records: [TelemetryRecord(timeOffsetMs: 0, soc: 50)], sequence: sequence, to: &bytes)
            return ByteBufferAllocator().buffer(bytes: bytes)
        }

        /// Every write each session made since the last call, as the ACKs each write holds.
        func writes() throws -> [[[Ack]]] {
            try channels.map { channel in
                var writes: [[Ack]] = []
                while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                    let bytes = buffer.readBytes(length: buffer.readableBytes)!
                    var acks: [Ack] = []
                    var offset = 0
                    try bytes.withUnsafeBytes { raw in
                        while offset < raw.count {
                            let frame = try #require(try FrameDecoder().decode(UnsafeRawBufferPointer(rebasing: raw[offset...])))
                            if case .ack(let ack) = try frame.message() { acks.append(ack) }
                            offset += frame.header.frameLength
                        }
                    }
                    writes.append(acks)
                }
                return writes
            }
        }
    }

    @Test func aBurstOfCompletionsGivesEachSessionOneAckWriteForItsLastFrame() throws {
        let sessions = try Sessions(count: 3)
        // Three reads per session, one frame each, before the store completes anything.
        for sequence in UInt32(1)...3 {
            for channel in sessions.channels { try channel.writeInbound(sessions.frame(sequence)) }
        }
        sessions.loop.run()
        #expect(try sessions.writes().allSatisfy { $0.isEmpty }, "nothing is ACKed before it is durable")
        sessions.sink.commitAll()  // one durable round holding all nine frames
        sessions.loop.run()
        #expect(try sessions.writes() == Array(repeating: [[Ack(sequence: 3)]], count: 3))
        // The next burst: one more frame each, one more ACK write each.
        for channel in sessions.channels { try channel.writeInbound(sessions.frame(4)) }
        sessions.sink.commitAll()
        sessions.loop.run()
        #expect(try sessions.writes() == Array(repeating: [[Ack(sequence: 4)]], count: 3))
        #expect(sessions.flow.queuedBytes == 0)
    }

    /// A store that makes the frame durable inside `submit`, on the event loop.
    struct ImmediateSink: IngestSink {
        func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
            submission.completion(CommitOutcome(stored: 1, duplicates: 0, rejected: 0))
        }
    }

    @Test func aFrameCompletedInsideSubmitIsAckedOnceAfterTheRead() throws {
        let sessions = try Sessions(count: 2, storage: ImmediateSink())
        for channel in sessions.channels {
            try channel.writeInbound(sessions.frame(1))
            try channel.writeInbound(sessions.frame(2))
        }
        sessions.loop.run()
        #expect(try sessions.writes() == Array(repeating: [[Ack(sequence: 2)]], count: 2))
        #expect(sessions.flow.queuedBytes == 0)
    }
}
