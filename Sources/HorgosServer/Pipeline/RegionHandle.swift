import HorgosStore
import HorgosWire

/// One served region as a session sees it, resolved once when the session starts: its flow control, its
/// journal sink and its counters (labelled with the listener's protocol). Nothing on the per-frame path
/// looks a region up by its code.
public final class RegionHandle: Sendable {
    /// The region.
    public let region: Region
    /// Its queue's byte accounting and backpressure (shared by every listener).
    public let flow: RegionFlowControl
    /// Where its frames go (the region's writer).
    public let sink: any IngestSink
    /// Its counters for one protocol.
    public let counters: RegionCounters

    /// A handle from its parts.
    public init(region: Region, flow: RegionFlowControl, sink: any IngestSink, counters: RegionCounters) {
        self.region = region
        self.flow = flow
        self.sink = sink
        self.counters = counters
    }

    /// The region's ISO code.
    public var code: String { region.code }

    /// One listener's handles: every region of `flows` with its sink from `sink` and counters labelled
    /// `protocolName`. Regions `sink` has no writer for are left out (their peers are refused).
    public static func table(
        flows: [String: RegionFlowControl], sink: any IngestSink, metrics: PipelineMetrics
    ) -> [String: RegionHandle] {
        var table: [String: RegionHandle] = [:]
        for (code, flow) in flows {
            guard let region = Region(code), let regionSink = sink.sink(for: region) else { continue }
            table[code] = RegionHandle(
                region: region, flow: flow, sink: regionSink, counters: metrics.counters(for: region))
        }
        return table
    }
}
