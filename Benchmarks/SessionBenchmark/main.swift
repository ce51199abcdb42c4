// The per-frame cost of the daemon's event-loop path (issue 11, item 8), measured without sockets or TLS.
//
// Pushes one-record TELEMETRY frames through the real pipeline handlers of a telemetry connection
// (IdleStateHandler -> ByteToMessageHandler(FrameChannelDecoder) -> SessionHandler) on EmbeddedChannels
// sharing one EmbeddedEventLoop, with the daemon's metrics observer (Prometheus through swift-metrics)
// and its stderr log handler. The store is a fake sink that completes every frame of a round at once,
// the way one durable journal round completes many sessions' frames in a burst.
//
// One round = every session receives one frame (one read each, as 1,000 vehicles at 10 Hz produce),
// then the round's completions fire, then the loop runs (commit delivery, ACK writes). Everything a
// round does on the loop happens inside `measuredRound`; building frames and reading the ACKs back
// happen outside it, so callgrind can count only the former:
//
//   valgrind --tool=callgrind --toggle-collect='*measuredRound*' \
//       .build-hotpath/release/horgos-bench-session --sessions 100 --rounds 100
//
// Instructions per frame = the collected total / (sessions x rounds). It also prints the heap
// allocations per frame made inside `measuredRound` (HorgosAllocationCounter, linked in: it counts this
// thread's malloc calls) and, without valgrind, the wall time per frame (indicative only). It exits
// non-zero unless every frame was acknowledged.
import Foundation
import HorgosAllocationCounter
import HorgosServer
import HorgosStore
import HorgosWire
import HorgosWireNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOTLS

struct Options {
    var sessions = 100
    var rounds = 100

    init(_ arguments: [String]) {
        var index = 0
        while index < arguments.count {
            let value = index + 1 < arguments.count ? Int(arguments[index + 1]) : nil
            switch (arguments[index], value) {
            case ("--sessions", let value?): sessions = value
            case ("--rounds", let value?): rounds = value
            default:
                FileHandle.standardError.write(Data("usage: horgos-bench-session [--sessions N] [--rounds N]\n".utf8))
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
let vin = VIN("LSVAU2180N2183294")!
let loop = EmbeddedEventLoop()
let sink = RoundSink()
let flow = RegionFlowControl(region: "AE", highWatermark: 64 << 20, lowWatermark: 32 << 20)
let environment = SessionEnvironment(
    authorize: { _ in .success(SessionPeer(role: .vehicle, vin: vin, market: "AE")) },
    regions: ["AE": flow], sink: sink, limits: SessionLimits(ackWindow: 64), now: { 1_700_000_000_000 },
    observer: MetricsSessionObserver(logger: logger, regions: ["AE"]), logger: logger)

var channels: [EmbeddedChannel] = []
for _ in 0..<options.sessions {
    let channel = EmbeddedChannel(loop: loop)
    let pipeline = channel.pipeline.syncOperations
    try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(90)))
    try pipeline.addHandler(ByteToMessageHandler(FrameChannelDecoder(maxPayload: WireFormat.defaultMaxPayload)))
    try pipeline.addHandler(SessionHandler(environment: environment))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
    var hello: [UInt8] = []
    FrameEncoder.appendHello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "bench"), to: &hello)
    try channel.writeInbound(channel.allocator.buffer(bytes: hello))
    loop.run()
    channels.append(channel)
}

/// This round's frame for every session (sequence = round + 1, one record, 84 bytes).
@MainActor func frames(round: Int) -> [ByteBuffer] {
    var bytes: [UInt8] = []
    FrameEncoder.appendTelemetry(
        vin: vin, baseTimeMs: 1_700_000_000_000 + Int64(round) * 100,
        records: [TelemetryRecord(timeOffsetMs: 0, soc: 50)], sequence: UInt32(round + 1), to: &bytes)
    // One buffer per session, as each socket read brings its own.
    return channels.map { $0.allocator.buffer(bytes: bytes) }
}

@MainActor @inline(never)
func measuredRound(_ frames: [ByteBuffer]) throws {
    for (channel, frame) in zip(channels, frames) {
        try channel.writeInbound(frame)
    }
    sink.completeRound()
    loop.run()
}

/// Reads back what the sessions wrote; returns the highest acknowledged sequence of each.
@MainActor @inline(never)
func drainReplies() throws -> [UInt32] {
    var highest: [UInt32] = []
    for channel in channels {
        var top: UInt32 = 0
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            let bytes = buffer.readBytes(length: buffer.readableBytes)!
            var offset = 0
            try bytes.withUnsafeBytes { raw in
                while offset < raw.count {
                    guard let frame = try FrameDecoder().decode(UnsafeRawBufferPointer(rebasing: raw[offset...])) else {
                        break
                    }
                    if case .ack(let ack) = try frame.message() { top = max(top, ack.sequence) }
                    offset += frame.header.frameLength
                }
            }
        }
        highest.append(top)
    }
    return highest
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
    for (index, top) in try drainReplies().enumerated() where top > 0 { acked[index] = top }
}
let total = options.sessions * options.rounds
let unacked = acked.filter { $0 != UInt32(options.rounds) }.count
let perFrameNs = Double(elapsed.components.seconds) * 1e9 / Double(total)
    + Double(elapsed.components.attoseconds) / 1e9 / Double(total)
print("sessions=\(options.sessions) rounds=\(options.rounds) frames=\(total) "
      + "ns_per_frame=\(String(format: "%.0f", perFrameNs)) "
      + "allocations_per_frame=\(String(format: "%.2f", Double(allocations) / Double(total))) "
      + "sessions_not_fully_acked=\(unacked)")
if unacked > 0 || flow.queuedBytes != 0 {
    print("FAILED: \(unacked) sessions did not get an ACK of their last frame; queued bytes \(flow.queuedBytes)")
    exit(1)
}
