import HorgosStore
import HorgosWire
import NIOCore

/// A slice of NIO's receive buffer handed to a region writer without a copy.
extension ByteBuffer: FrameBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeReadableBytes(body)
    }

    public var count: Int { readableBytes }
}

/// Hands frames to the region writers of a `ShardStore`.
public struct StoreIngestSink: IngestSink {
    let writers: [Region: RegionWriter]

    public init(store: ShardStore) {
        self.writers = store.writers
    }

    /// The region's writer, wrapped (resolved once per session).
    public func sink(for region: Region) -> (any IngestSink)? {
        writers[region].map(RegionWriterSink.init)
    }

    /// Frames without a resolved region cannot be routed.
    public func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        throw IngestRefusal(reason: "no region resolved for this frame")
    }
}

/// One region writer as a sink.
struct RegionWriterSink: IngestSink {
    let writer: RegionWriter

    func sink(for region: Region) -> (any IngestSink)? { self }

    func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        do {
            switch submission.kind {
            case .telemetry: try writer.submitTelemetry(submission.payload, completion: submission.completion)
            case .event: try writer.submitEvent(submission.payload, completion: submission.completion)
            case .gbt32960: try writer.submitGBT32960(submission.payload, completion: submission.completion)
            }
        } catch {
            throw IngestRefusal(reason: "\(error)")
        }
    }
}
