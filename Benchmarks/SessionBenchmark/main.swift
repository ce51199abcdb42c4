// The per-frame cost of the daemon's event-loop path (issue 11, item 8), measured without sockets or TLS.
//
// `--protocol native` (default) pushes one-record TELEMETRY frames (84 bytes) through the pipeline handlers
// of a native connection (IdleStateHandler -> ByteToMessageHandler(FrameChannelDecoder) ->
// ConnectionHandler<NativeProtocol>); `--protocol gbt32960` pushes typical GB/T 32960 realtime frames (every
// 2016 type, 64 cells, ~300 bytes) of logged-in vehicles through the same pipeline
// (ByteToMessageHandler(GBT32960ChannelDecoder) -> ConnectionHandler<GBT32960Protocol>). Both run on EmbeddedChannels
// sharing one EmbeddedEventLoop, with the daemon's metrics (Prometheus through swift-metrics) and its
// stderr log handler. The store is a fake sink that completes every frame of a round at once, the way one
// durable journal round completes many sessions' frames in a burst.
//
// One round = every session receives one frame (one read each, as 1,000 vehicles at 10 Hz produce),
// then the round's completions fire, then the loop runs (commit delivery, ACK writes). Everything a
// round does on the loop happens inside `measuredRound`; building frames and reading the ACKs back
// happen outside it, so callgrind can count only the former:
//
//   valgrind --tool=callgrind --toggle-collect='*measuredRound*' \
//       .build-hotpath/release/horgos-bench-session --sessions 100 --rounds 100 [--protocol gbt32960]
//
// Instructions per frame = the collected total / (sessions x rounds). It also prints the heap
// allocations per frame made inside `measuredRound` (HorgosAllocationCounter, linked in: it counts this
// thread's malloc calls) and, without valgrind, the wall time per frame (indicative only). It exits
// non-zero unless every frame was acknowledged (native: ACK of the last sequence; GB/T 32960: one success
// answer per realtime frame).
import Foundation
import HorgosAllocationCounter
import HorgosGBT32960
import HorgosServer
import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOTLS

struct Options {
    enum WireProtocolChoice: String { case native, gbt32960 }
    var sessions = 100
    var rounds = 100
    var wireProtocol = WireProtocolChoice.native

    init(_ arguments: [String]) {
        var index = 0
        while index < arguments.count {
            let text = index + 1 < arguments.count ? arguments[index + 1] : ""
            switch (arguments[index], Int(text), WireProtocolChoice(rawValue: text)) {
            case ("--sessions", let value?, _): sessions = value
            case ("--rounds", let value?, _): rounds = value
            case ("--protocol", _, let choice?): wireProtocol = choice
            default:
                FileHandle.standardError.write(Data(
                    "usage: horgos-bench-session [--sessions N] [--rounds N] [--protocol native|gbt32960]\n".utf8))
                exit(2)
            }
            index += 2
        }
    }
}

/// The store: keeps the round's submissions and completes them together (one journal round).
final class RoundSink: IngestSink, @unchecked Sendable {
    var held: [IngestSubmission] = []

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) { held.append(submission) }

    func completeRound() {
        for submission in held { submission.completion(CommitOutcome(stored: 1, duplicates: 0, rejected: 0)) }
        held.removeAll(keepingCapacity: true)
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: .warning) }
_ = HorgosMetrics.bootstrap()
let logger = Logger(label: "horgos-bench-session")
let loop = EmbeddedEventLoop()
let sink = RoundSink()
let flow = RegionFlowControl(region: "AE", highWatermark: 64 << 20, lowWatermark: 32 << 20)
let nowMs: Int64 = 1_700_000_000_000

/// The VIN of session `index` (each GB/T 32960 vehicle logs in with its own: a second login of one VIN
/// would take the first one's session over).
func vin(_ index: Int) -> VIN {
    let digits = String(index + 100_000)
    return VIN("LSVAU2180N2" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits.suffix(6))!
}

/// Connects the session's channel with the given handlers, runs its TLS-completed event and opening frame.
@MainActor func open(_ handlers: [any ChannelHandler], hello: [UInt8]) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel(loop: loop)
    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(90)))
    try channel.pipeline.syncOperations.addHandlers(handlers)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
    try channel.writeInbound(channel.allocator.buffer(bytes: hello))
    loop.run()
    return channel
}

/// The pieces of one protocol's run: its sessions and the frame a session sends in a round.
struct Run {
    var channels: [EmbeddedChannel]
    /// The bytes of session `index`'s frame in `round`.
    var frame: (_ index: Int, _ round: Int) -> [UInt8]
}

/// The connection's identity (a vehicle certificate of `vin(index)` in AE) as admission would read it.
func identity(_ index: Int) -> PeerIdentity {
    PeerIdentity(role: .vehicle, vin: vin(index).description, name: vin(index).description, market: "AE",
                 serialNumber: String(index + 1, radix: 16), subject: "CN=\(vin(index))")
}

/// The daemon's commit inboxes, one per loop, shared by every session of both protocols.
let inboxes = CommitInboxes()

/// The daemon's pipeline for protocol `P`: region handles with its counters, its metrics, no byte budget
/// (as in the measurements before the pipeline rework).
func environment<P: IngestProtocol>(_ wireProtocol: P, index: Int, maxInFlight: Int) -> PipelineEnvironment<P> {
    let metrics = PipelineMetrics(protocolName: P.name)
    let peer = identity(index)
    return PipelineEnvironment(
        wireProtocol: wireProtocol, admit: { _ in .success(peer) },
        regions: RegionHandle.table(flows: ["AE": flow], sink: sink, metrics: metrics), metrics: metrics,
        inboxes: inboxes, maxInFlight: maxInFlight, now: { nowMs }, logger: logger)
}

@MainActor func nativeRun() throws -> Run {
    let wireProtocol = NativeProtocol(limits: SessionLimits(ackWindow: 64), regions: ["AE"], logger: logger)
    var hello: [UInt8] = []
    FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "bench"), to: &hello)
    let channels = try (0..<options.sessions).map { _ in
        try open(
            [ByteToMessageHandler(FrameChannelDecoder(maxPayload: WireFormat.defaultMaxPayload)),
             ConnectionHandler(environment: environment(wireProtocol, index: 0, maxInFlight: .max))], hello: hello)
    }
    return Run(channels: channels) { _, round in
        var bytes: [UInt8] = []
        FrameEncoder.appendTelemetry(
            vin: vin(0), baseTimeMs: nowMs + Int64(round) * 100, records: [TelemetryRecord(timeOffsetMs: 0, soc: 50)],
            sequence: UInt32(round + 1), to: &bytes)
        return bytes
    }
}

@MainActor func gbt32960Run() throws -> Run {
    let time = GBT32960Time(epochSeconds: nowMs / 1000, utcOffsetSeconds: GBT32960Format.beijingUTCOffsetSeconds)
    let settings = GBT32960Settings()
    let wireProtocol = GBT32960Protocol(settings: settings, logger: logger)
    var channels: [EmbeddedChannel] = []
    for index in 0..<options.sessions {
        var login: [UInt8] = []
        GBT32960Encoder.appendFrame(command: .vehicleLogin, vin: GBT32960VINField(vin(index)), to: &login) {
            GBT32960Encoder.appendVehicleLogin(
                time: time, sequence: 1, iccid: Array("89860012345678901234".utf8), subsystemCodes: [[0x31]], to: &$0)
        }
        channels.append(try open(
            [ByteToMessageHandler(GBT32960ChannelDecoder()),
             ConnectionHandler(environment: environment(wireProtocol, index: index, maxInFlight: settings.maxInFlight))],
            hello: login))
    }
    // One typical report per session, built once: a round sends it again (the fake store does not mind).
    let reports: [[UInt8]] = (0..<options.sessions).map { index in
        var bytes: [UInt8] = []
        let values = GBT32960RealtimeValues.typical(seed: index, time: time)
        GBT32960Encoder.appendFrame(command: .realtime, vin: GBT32960VINField(vin(index)), to: &bytes) {
            values.appendDataUnit(to: &$0)
        }
        return bytes
    }
    return Run(channels: channels) { index, _ in reports[index] }
}

let run = try options.wireProtocol == .native ? nativeRun() : gbt32960Run()
let channels = run.channels

/// This round's frame for every session, one buffer each (as each socket read brings its own).
@MainActor func frames(round: Int) -> [ByteBuffer] {
    channels.indices.map { channels[$0].allocator.buffer(bytes: run.frame($0, round)) }
}

@MainActor @inline(never)
func measuredRound(_ frames: [ByteBuffer]) throws {
    for (channel, frame) in zip(channels, frames) {
        try channel.writeInbound(frame)
    }
    sink.completeRound()
    loop.run()
}

/// Reads back what the sessions wrote; returns, for each, the highest ACK sequence (native) or the
/// number of success answers to realtime frames (GB/T 32960).
@MainActor @inline(never)
func drainReplies() throws -> [UInt32] {
    var counts: [UInt32] = []
    for channel in channels {
        var count: UInt32 = 0
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            let bytes = buffer.readBytes(length: buffer.readableBytes)!
            var offset = 0
            try bytes.withUnsafeBytes { raw in
                while offset < raw.count {
                    let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                    if options.wireProtocol == .native {
                        guard let frame = try FrameDecoder().decode(rest) else { break }
                        if case .ack(let ack) = try frame.message() { count = max(count, ack.sequence) }
                        offset += frame.header.frameLength
                    } else {
                        guard case .frame(let header) = try GBT32960Decoder().scan(rest) else { break }
                        if header.command == .realtime && header.response == .success { count += 1 }
                        offset += header.frameLength
                    }
                }
            }
        }
        counts.append(count)
    }
    return counts
}

_ = try drainReplies()
var acked = [UInt32](repeating: 0, count: channels.count)
var elapsed: Duration = .zero
var allocations: Int64 = 0
let clock = ContinuousClock()
for round in 0..<options.rounds {
    let batch = frames(round: round)
    let start = clock.now
    horgos_allocation_counter_start()
    try measuredRound(batch)
    allocations += horgos_allocation_counter_stop()
    elapsed += clock.now - start
    for (index, count) in try drainReplies().enumerated() {
        acked[index] = options.wireProtocol == .native ? max(acked[index], count) : acked[index] + count
    }
}
let total = options.sessions * options.rounds
let unacked = acked.filter { $0 != UInt32(options.rounds) }.count
let perFrameNs = Double(elapsed.components.seconds) * 1e9 / Double(total)
    + Double(elapsed.components.attoseconds) / 1e9 / Double(total)
print("protocol=\(options.wireProtocol.rawValue) sessions=\(options.sessions) rounds=\(options.rounds) frames=\(total) "
      + "ns_per_frame=\(String(format: "%.0f", perFrameNs)) "
      + "allocations_per_frame=\(String(format: "%.2f", Double(allocations) / Double(total))) "
      + "sessions_not_fully_acked=\(unacked)")
if unacked > 0 || flow.queuedBytes != 0 {
    print("FAILED: \(unacked) sessions did not get every frame answered; queued bytes \(flow.queuedBytes)")
    exit(1)
}
