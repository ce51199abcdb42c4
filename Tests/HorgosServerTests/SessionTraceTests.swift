import HorgosSessionTraces
import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOTLS
import Synchronization
import Testing

@testable import HorgosServer

/// Storage for a trace: holds each data frame until the trace commits it, and computes the outcome
/// the store would (records outside the time horizon rejected, a (VIN, timestamp) seen before a duplicate).
final class TraceStorage: IngestSink {
    private let held = Mutex<[IngestSubmission]>([])
    let refuses: Bool
    let horizon: TimeHorizon
    let nowMs: Int64
    private let seen = Mutex<Set<String>>([])

    init(refuses: Bool, horizon: AnnouncedHorizon, nowMs: Int64) {
        self.refuses = refuses
        self.horizon = TimeHorizon(
            pastMs: Int64(horizon.pastSeconds) * 1000, futureMs: Int64(horizon.futureSeconds) * 1000)
        self.nowMs = nowMs
    }

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        if refuses { throw IngestRefusal(reason: "queue over its hard bound") }
        held.withLock { $0.append(submission) }
    }

    var submitted: Int { held.withLock { $0.count } }

    /// Completes data frame `sequence` (the sequence-th frame submitted on the connection).
    func commit(_ sequence: UInt32) throws {
        let index = Int(sequence) - 1
        let submission = try #require(
            held.withLock { $0.indices.contains(index) ? $0[index] : nil },
            "commit \(sequence): that data frame never reached storage")
        let payload = submission.payload
        let at = payload.readerIndex
        let vin = payload.getString(at: at + 8, length: 17) ?? "?"
        var timestamps: [Int64] = []
        if submission.kind == .telemetry {
            let base = payload.getInteger(at: at, endianness: .little, as: Int64.self)!
            let size = Int(payload.getInteger(at: at + 25, as: UInt8.self)!)
            let count = Int(payload.getInteger(at: at + 26, endianness: .little, as: UInt16.self)!)
            for index in 0..<count {
                let offset = payload.getInteger(at: at + 28 + index * size, endianness: .little, as: UInt32.self)!
                timestamps.append(base &+ Int64(offset))  // PROTOCOL.md 4.3: the sum wraps
            }
        } else {
            timestamps.append(payload.getInteger(at: at, endianness: .little, as: Int64.self)!)
        }
        var outcome = CommitOutcome()
        for timestamp in timestamps {
            if !horizon.contains(timestamp, nowMs: nowMs) {
                outcome.rejected += 1
            } else if !seen.withLock({ $0.insert("\(vin)@\(timestamp)").inserted }) {
                outcome.duplicates += 1
            } else {
                outcome.stored += 1
            }
        }
        submission.completion(outcome)
    }
}

/// Counts what the session reported, to check the metrics tell the truth about the wire.
final class RecordingObserver: NativeSessionObserver {
    let errors = Mutex<[ErrorCode]>([])
    let truncated = Atomic<Int>(0)

    func errorSent(_ code: ErrorCode) { errors.withLock { $0.append(code) } }
    func ackSent() {}
    func streamEndedInsideFrame() { truncated.add(1, ordering: .relaxed) }
}

/// Runs every trace of Proto/vectors/sessions.txt against the real `SessionHandler` behind the real
/// frame decoder, in an `EmbeddedChannel` (storage and the clock are the trace's).
@Suite struct SessionTraceTests {
    @Test func everyTraceGetsTheListedAnswersFromTheSessionHandler() throws {
        let traces = try SessionTrace.loadAll()
        #expect(traces.count >= 40)
        for trace in traces {
            try run(trace)
        }
    }

    @Test func tracesCoverEveryErrorAClientCanProvoke() throws {
        let traces = try SessionTrace.loadAll()
        var codes = Set<String>()
        for trace in traces {
            for case .server("ERROR", let fields) in trace.steps { codes.insert(fields["code"] ?? "") }
        }
        // Not provokable by a client: a server fault, and TRUNCATED_FRAME, which the server never sends
        // (trace truncated_frame shows the close instead).
        let excluded: Set<ErrorCode> = [.internalError, .truncatedFrame]
        let wanted = Set(ErrorCode.allCases.filter { !excluded.contains($0) }.map(\.name))
        #expect(wanted.subtracting(codes).isEmpty, "no trace provokes \(wanted.subtracting(codes).sorted())")
        let names = traces.map(\.name)
        #expect(Set(names).count == names.count, "trace names are unique")
        for wanted in [
            "truncated_frame", "server_shutdown_drains", "idle_timeout", "ping_pong", "window_exceeded",
            "client_bye_nothing_outstanding", "horizon_rejects_old_records", "resend_is_acked_like_new",
            "hello_never_comes", "horizon_edges_are_inclusive", "timestamp_that_wraps_is_rejected",
            "control_frame_error_names_its_header_sequence", "revoked_while_connected",
        ] {
            #expect(names.contains(wanted), "trace \(wanted)")
        }
    }

    @Test func aTraceWithALineOutsideTheFormatIsRejected() {
        #expect(throws: SessionTraceError.self) { try SessionTrace.parse("trace x\nserver: ACK\nwobble\nend\n") }
        #expect(throws: SessionTraceError.self) { try SessionTrace.parse("trace x\nclient: 48 47\nend\n") }
        #expect(throws: SessionTraceError.self) { try SessionTrace.parse("trace x\nserver: NOPE a=1\nend\n") }
        #expect(throws: SessionTraceError.self) { try SessionTrace.parse("trace x\nclosed\n") }
        #expect((try? SessionTrace.parse("trace x\nclient: 48 47\nsend\nclosed\nend\n"))?.first?.steps.count == 2)
    }

    @Test func aWrongAnswerFailsTheTraceRunner() throws {
        // The runner must be able to fail: a trace expecting ACK where the server sends WELCOME.
        let trace = try #require(
            try SessionTrace.parse(
                "trace wrong\nclient: "
                    + hello.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
                    + "\nsend\nserver: ACK ack_sequence=1\nend\n"
            ).first)
        let outcome = try replay(trace)
        #expect(!outcome.failures.isEmpty)
    }

    private var hello: [UInt8] {
        var bytes: [UInt8] = []
        FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "t"), to: &bytes)
        return bytes
    }

    private func run(_ trace: SessionTrace) throws {
        let outcome = try replay(trace)
        for failure in outcome.failures { Issue.record("\(trace): \(failure)") }
    }

    struct Outcome {
        var failures: [String] = []
    }

    private func replay(_ trace: SessionTrace) throws -> Outcome {
        var outcome = Outcome()
        let limits = SessionLimits(ackWindow: trace.ackWindow ?? 64, maxPayload: trace.maxPayload ?? 65_536)
        let storage = TraceStorage(refuses: trace.storageRefuses, horizon: limits.horizon, nowMs: trace.clockMs)
        let observer = RecordingObserver()
        let identity = PeerIdentity(
            role: trace.peer.isGateway ? .gateway : .vehicle, vin: trace.peer.vin, name: trace.peer.vin ?? "gateway",
            market: trace.peer.market, serialNumber: "1", subject: "trace")
        let refusal = trace.refusal.flatMap { ErrorCode(name: $0) }
        let metrics = PipelineMetrics(protocolName: NativeProtocol.name)
        let environment = PipelineEnvironment(
            wireProtocol: NativeProtocol(limits: limits, regions: ["AE"], observer: observer, logger: Logger(label: "trace")),
            admit: { _ in
                refusal.map { .failure(SessionRefusal(code: $0, reason: "refused by the trace")) } ?? .success(identity)
            },
            regions: RegionHandle.table(
                flows: ["AE": RegionFlowControl(region: "AE", highWatermark: 1 << 24, lowWatermark: 1 << 23)],
                sink: storage, metrics: metrics),
            metrics: metrics, maxInFlight: .max, now: { trace.clockMs }, logger: Logger(label: "trace"))
        let channel = EmbeddedChannel()
        let handler = ConnectionHandler(environment: environment)
        let handshakeTimeout = TimeAmount.seconds(10)  // PROTOCOL.md section 1's default
        try channel.pipeline.syncOperations.addHandler(HandshakeTimeoutHandler(timeout: handshakeTimeout))
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(FrameChannelDecoder(maxPayload: limits.maxPayload)))
        try channel.pipeline.syncOperations.addHandler(handler)
        // Connected, so `closed` checks a real channel state and the handshake timer runs.
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7443)).wait()
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        var received: [(type: String, fields: [String: String])] = []
        var errorFrames = 0
        func collect() throws {
            channel.embeddedEventLoop.run()
            var bytes: [UInt8] = []
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
            }
            let frames = try ServerFrame.decodeAll(bytes)
            errorFrames += frames.filter { $0.type == "ERROR" }.count
            received += frames
        }
        try collect()
        for (index, step) in trace.steps.enumerated() {
            let at = "step \(index + 1)"
            switch step {
            case .send(let bytes):
                var buffer = channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                _ = try? channel.writeInbound(buffer)  // a refused frame closes the channel; the trace checks that
            case .commit(let sequence):
                try storage.commit(sequence)
            case .shutdown:
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            case .idleTimeout:
                channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
            case .clientEOF:
                channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            case .handshakeTimeout:
                channel.embeddedEventLoop.advanceTime(by: handshakeTimeout)
            case .revoke:
                _ = handler.endIfRevoked { _ in true }
            case .server(let type, let fields):
                guard !received.isEmpty else {
                    outcome.failures.append("\(at): expected \(type), the server sent nothing")
                    continue
                }
                let actual = received.removeFirst()
                let wrong = ServerFrame.mismatches(expected: (type, fields), actual: actual)
                if !wrong.isEmpty { outcome.failures.append("\(at): \(wrong.joined(separator: "; "))") }
                continue
            case .closed:
                if channel.isActive { outcome.failures.append("\(at): the connection is still open") }
                if !received.isEmpty { outcome.failures.append("\(at): unlisted frames \(received.map(\.type))") }
                continue
            }
            try collect()
        }
        if !received.isEmpty { outcome.failures.append("at end: unlisted frames \(received.map(\.type))") }
        // The metrics tell the truth: one errorSent per ERROR frame on the wire, and a truncated
        // stream is counted as such, not as an ERROR sent.
        let reported = observer.errors.withLock { $0.count }
        if reported != errorFrames {
            outcome.failures.append("errorSent reported \(reported) times for \(errorFrames) ERROR frames")
        }
        let truncated = observer.truncated.load(ordering: .relaxed)
        if truncated != (trace.steps.contains(.clientEOF) ? 1 : 0) {
            outcome.failures.append("streamEndedInsideFrame reported \(truncated) times")
        }
        _ = try? channel.finish()
        return outcome
    }
}
