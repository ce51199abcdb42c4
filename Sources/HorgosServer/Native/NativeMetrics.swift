import HorgosWire
import Metrics

/// The native protocol's own metrics: `horgos_frames_total{type,region}`, `horgos_errors_sent_total{code}`,
/// `horgos_acks_total`, `horgos_streams_truncated_total` (a client's stream ended inside a frame). Sessions,
/// refusals, records and the ACK latency are the pipeline's (``PipelineMetrics``, labelled by protocol).
public struct NativeMetrics: NativeSessionObserver {
    private let acks = Counter(label: "horgos_acks_total")

    /// The metrics; every ERROR code's series starts at 0.
    public init() {
        for code in ErrorCode.allCases {
            _ = Counter(label: "horgos_errors_sent_total", dimensions: [("code", code.name)])
        }
    }

    public func errorSent(_ code: ErrorCode) {
        Counter(label: "horgos_errors_sent_total", dimensions: [("code", code.name)]).increment()
    }

    public func ackSent() { acks.increment() }

    public func streamEndedInsideFrame() { Counter(label: "horgos_streams_truncated_total").increment() }
}

/// One region's `horgos_frames_total{type,region}`: the TELEMETRY series created once (held by each
/// session of the region), the rare types through swift-metrics' registry.
final class NativeFrameCounters: Sendable {
    let region: String
    private let telemetry: Counter

    init(region: String) {
        self.region = region
        telemetry = Counter(label: "horgos_frames_total", dimensions: [("type", "\(FrameType.telemetry)"), ("region", region)])
    }

    func received(_ type: FrameType) {
        if type == .telemetry {
            telemetry.increment()
        } else {
            Counter(label: "horgos_frames_total", dimensions: [("type", "\(type)"), ("region", region)]).increment()
        }
    }
}
