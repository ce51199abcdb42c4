import HorgosConfig
import HorgosGBT32960
import HorgosStore
import HorgosWire
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import HorgosServer

/// One GB/T 32960 connection through the daemon's own frame decoder and connection pipeline, on an
/// EmbeddedChannel: a test writes a unit's bytes and reads the answers exactly as they would go on
/// the wire. Realtime and reissue frames are committed at once (stored), so their answers follow
/// their frame.
final class GBT32960Connection {
    /// Commits every frame as soon as it is submitted.
    struct CommittingSink: IngestSink {
        func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
            submission.completion(CommitOutcome(stored: 1))
        }
    }

    let channel: EmbeddedChannel

    /// A connection of `peer` (the identity its certificate or the plain-TCP allow-list gives it)
    /// whose server clock reads `serverTimeMs`, in the Beijing time base.
    init(peer: GBT32960Peer, serverTimeMs: Int64, maxErrors: Int = 3) throws {
        let settings = GBT32960Settings(maxErrors: maxErrors)
        let logger = Logger(label: "gbt32960-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let metrics = PipelineMetrics(protocolName: GBT32960Protocol.name)
        let flow = RegionFlowControl(region: peer.market, highWatermark: 1 << 20, lowWatermark: 1 << 19)
        let environment = PipelineEnvironment(
            wireProtocol: GBT32960Protocol(settings: settings, logger: logger),
            admit: { _ in .failure(SessionRefusal(code: .identityInvalid, reason: "plain TCP only")) },
            plainPeer: peer,
            regions: RegionHandle.table(flows: [peer.market: flow], sink: CommittingSink(), metrics: metrics),
            metrics: metrics, maxInFlight: settings.maxInFlight, now: { serverTimeMs }, logger: logger)
        channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(GBT32960ChannelDecoder()), ConnectionHandler(environment: environment),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7325)).wait()
    }

    /// Writes `bytes` as the unit would and returns every frame the server answered with, in order.
    func send(_ bytes: [UInt8]) throws -> [[UInt8]] {
        guard channel.isActive else { return [] }
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        channel.embeddedEventLoop.run()
        var answers: [[UInt8]] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            answers.append(Array(buffer.readableBytesView))
        }
        return answers
    }

    /// The one answer to `bytes` (nil when there is none); records an issue when there are several.
    func answer(_ bytes: [UInt8]) throws -> [UInt8]? {
        let answers = try send(bytes)
        #expect(answers.count <= 1, "one request, one answer: \(answers.count)")
        return answers.first
    }
}

/// Milliseconds since the epoch of a Beijing wall-clock time `YY MM DD hh mm ss`.
func beijingMs(_ bytes: [UInt8]) throws -> Int64 {
    let time = try bytes.withUnsafeBytes { raw throws(GBT32960Error) in try GBT32960Time(bytes: raw) }
    return time.epochSeconds(utcOffsetSeconds: GBT32960Format.beijingUTCOffsetSeconds) * 1000
}
