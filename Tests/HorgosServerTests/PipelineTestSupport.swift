import HorgosGBT32960
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

/// A sink that holds submissions until the test completes them (a stalled or slow writer).
final class HeldSink: IngestSink {
    let held = Mutex<[IngestSubmission]>([])

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) { held.withLock { $0.append(submission) } }

    var count: Int { held.withLock { $0.count } }

    /// Completes every held submission as stored (a native TELEMETRY frame's records; one GB/T 32960 frame).
    func commitAll() {
        let all = held.withLock { held in
            defer { held.removeAll() }
            return held
        }
        for submission in all {
            let records: Int =
                submission.kind == .gbt32960
                ? 1
                : Int(
                    submission.payload.getInteger(
                        at: submission.payload.readerIndex + 26, endianness: .little, as: UInt16.self) ?? 0)
            submission.completion(CommitOutcome(stored: records, duplicates: 0, rejected: 0))
        }
    }
}

/// Storage that refuses every frame (its queue is full).
struct RefusingSink: IngestSink {
    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        throw IngestRefusal(reason: "queue full")
    }
}

/// Storage that makes every frame durable inside `submit`, on the event loop.
struct ImmediateSink: IngestSink {
    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        submission.completion(CommitOutcome(stored: 1, duplicates: 0, rejected: 0))
    }
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

/// The protocols the handler-level tests run on: every behaviour of the pipeline is pinned for both.
enum TestProtocol: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case native
    case gbt32960

    var testDescription: String { rawValue }
}

/// What a peer received, in words both protocols share.
enum Reply: Equatable, Sendable {
    /// WELCOME, or a login answered success.
    case opened
    /// Native: a cumulative ACK through this sequence. GB/T 32960: a realtime frame answered success (0).
    case answered(UInt32)
    /// Native: ERROR with this code. GB/T 32960: an answer with the error flag to this command.
    case error(String)
    /// Native: BYE with this reason.
    case goodbye(Bye.Reason)
    /// Anything else (PONG, a heartbeat's answer).
    case other(String)
}

/// One connection's pipeline on an `EmbeddedChannel`: the protocol's decoder and the ``ConnectionHandler``,
/// a peer admitted as if its TLS handshake had completed.
final class EmbeddedConnection {
    static let vin = VIN("LSVAU2180N2183294")!
    static let nowMs: Int64 = 1_700_000_000_000

    let wire: TestProtocol
    let channel: EmbeddedChannel
    let sink: HeldSink
    let flow: RegionFlowControl
    let reads = ReadCounter()
    let role: PeerIdentity.Role

    init(
        _ wire: TestProtocol, market: String = "AE", role: PeerIdentity.Role = .vehicle, high: Int = 1 << 20,
        low: Int = 1 << 19, storage: (any IngestSink)? = nil, loop: EmbeddedEventLoop? = nil,
        inboxes: CommitInboxes = CommitInboxes(), flow: RegionFlowControl? = nil, sink: HeldSink = HeldSink(),
        maxInFlight: Int = 64, isVINRevoked: @escaping @Sendable (VIN) -> Bool = { _ in false }
    ) throws {
        self.wire = wire
        self.role = role
        self.sink = sink
        self.flow = flow ?? RegionFlowControl(region: "AE", highWatermark: high, lowWatermark: low)
        channel = loop.map { EmbeddedChannel(loop: $0) } ?? EmbeddedChannel()
        let identity = PeerIdentity(
            role: role, vin: role == .vehicle ? Self.vin.description : nil,
            name: role == .vehicle ? Self.vin.description : "gw", market: market, serialNumber: "1a", subject: "test")
        let metrics = PipelineMetrics(protocolName: wire.rawValue)
        let regions = RegionHandle.table(flows: ["AE": self.flow], sink: storage ?? sink, metrics: metrics)
        let logger = Logger(label: "test")
        try channel.pipeline.syncOperations.addHandler(reads)
        switch wire {
        case .native:
            let environment = PipelineEnvironment(
                wireProtocol: NativeProtocol(limits: SessionLimits(ackWindow: 64), regions: ["AE"], logger: logger),
                admit: { _ in .success(identity) }, regions: regions, isVINRevoked: isVINRevoked, metrics: metrics,
                inboxes: inboxes, maxInFlight: .max, now: { Self.nowMs }, logger: logger)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameChannelDecoder(maxPayload: 65_536)))
            try channel.pipeline.syncOperations.addHandler(ConnectionHandler(environment: environment))
        case .gbt32960:
            let environment = PipelineEnvironment(
                wireProtocol: GBT32960Protocol(settings: GBT32960Settings(maxInFlight: maxInFlight), logger: logger),
                admit: { _ in .success(identity) }, regions: regions, isVINRevoked: isVINRevoked, metrics: metrics,
                inboxes: inboxes, maxInFlight: maxInFlight, now: { Self.nowMs }, logger: logger)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(GBT32960ChannelDecoder()))
            try channel.pipeline.syncOperations.addHandler(ConnectionHandler(environment: environment))
        }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
    }

    /// The peer's opening (HELLO; a vehicle's or platform's login), not yet sent.
    func opening() -> [UInt8] {
        var bytes: [UInt8] = []
        switch wire {
        case .native:
            let kind: Hello.ClientKind = role == .vehicle ? .vehicle : .gateway
            FrameEncoder.appendHello(Hello(clientKind: kind, clientTimeMs: 0, softwareVersion: "fw 1.0"), to: &bytes)
        case .gbt32960 where role == .vehicle:
            GBT32960Encoder.appendFrame(command: .vehicleLogin, vin: GBT32960VINField(Self.vin), to: &bytes) {
                GBT32960Encoder.appendVehicleLogin(
                    time: Self.time, sequence: 1, iccid: Array("89860012345678901234".utf8),
                    subsystemCodes: [[0x31]], to: &$0)
            }
        case .gbt32960:
            GBT32960Encoder.appendFrame(command: .platformLogin, vin: GBT32960VINField(padding: "PLATFORM"), to: &bytes) {
                GBT32960Encoder.appendPlatformLogin(time: Self.time, sequence: 1, username: "p", password: "p", to: &$0)
            }
        }
        return bytes
    }

    /// Sends the opening and returns what it got.
    @discardableResult
    func open() throws -> [Reply] {
        try send(opening())
        return try replies()
    }

    static var time: GBT32960Time { GBT32960Time(epochSeconds: nowMs / 1000, utcOffsetSeconds: 8 * 3600) }

    /// A data frame: native TELEMETRY `sequence` for `vin` with `records` records; a GB/T 32960 realtime
    /// report for `vin` (one record).
    func data(_ sequence: UInt32, vin: VIN = EmbeddedConnection.vin, records: Int = 1) -> [UInt8] {
        var bytes: [UInt8] = []
        switch wire {
        case .native:
            let list = (0..<records).map { TelemetryRecord(timeOffsetMs: UInt32($0) * 1000, soc: 50) }
            FrameEncoder.appendTelemetry(
                vin: vin, baseTimeMs: Self.nowMs + Int64(sequence) * 100_000, records: list, sequence: sequence,
                to: &bytes)
        case .gbt32960:
            let values = GBT32960RealtimeValues.typical(
                seed: Int(sequence), time: GBT32960Time(
                    epochSeconds: Self.nowMs / 1000 + Int64(sequence), utcOffsetSeconds: 8 * 3600))
            GBT32960Encoder.appendFrame(command: .realtime, vin: GBT32960VINField(vin), to: &bytes) {
                values.appendDataUnit(to: &$0)
            }
        }
        return bytes
    }

    /// What a data frame of this protocol is answered with once committed (`sequence` the native one).
    func stored(_ sequence: UInt32) -> Reply { wire == .native ? .answered(sequence) : .answered(0) }

    func send(_ bytes: [UInt8]) throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try channel.writeInbound(buffer)
    }

    /// Every reply written since the last call, in order.
    func replies() throws -> [Reply] { try writes().flatMap { $0 } }

    /// Every write since the last call, as the replies each holds.
    func writes() throws -> [[Reply]] {
        channel.embeddedEventLoop.run()
        var writes: [[Reply]] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            writes.append(try Self.decode(bytes, wire))
        }
        return writes
    }

    static func decode(_ bytes: [UInt8], _ wire: TestProtocol) throws -> [Reply] {
        var replies: [Reply] = []
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                switch wire {
                case .native:
                    let frame = try #require(try FrameDecoder().decode(rest))
                    switch try frame.message() {
                    case .welcome: replies.append(.opened)
                    case .ack(let ack): replies.append(.answered(ack.sequence))
                    case .error(let error): replies.append(.error(error.knownCode?.name ?? "?"))
                    case .bye(let bye): replies.append(.goodbye(bye.reason))
                    default: replies.append(.other("\(frame.header.type)"))
                    }
                    offset += frame.header.frameLength
                case .gbt32960:
                    guard case .frame(let header) = try GBT32960Decoder().scan(rest) else {
                        Issue.record("a partial GB/T 32960 answer")
                        return
                    }
                    switch (header.command, header.response) {
                    case (.vehicleLogin, .success), (.platformLogin, .success): replies.append(.opened)
                    case (.realtime, .success), (.reissue, .success): replies.append(.answered(0))
                    case (_, .error): replies.append(.error(header.command.name))
                    default: replies.append(.other("\(header.command.name) \(header.response)"))
                    }
                    offset += header.frameLength
                }
            }
        }
        return replies
    }

    /// The daemon drains (SIGTERM): what the listener's quiescing sends each connection.
    func quiesce() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
