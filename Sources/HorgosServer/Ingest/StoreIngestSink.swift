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

/// Hands data frames to the region writers of a `ShardStore`.
public struct StoreIngestSink: IngestSink {
    let writers: [String: RegionWriter]

    public init(store: ShardStore) {
        var writers: [String: RegionWriter] = [:]
        for (region, writer) in store.writers { writers[region.code] = writer }
        self.writers = writers
    }

    public func submit(_ submission: IngestSubmission) throws(IngestRefusal) {
        guard let writer = writers[submission.region] else {
            throw IngestRefusal(reason: "region \(submission.region) has no writer")
        }
        do {
            if submission.isGBT32960Entry {
                try writer.submitGBT32960(submission.payload, completion: submission.completion)
                return
            }
            switch submission.type {
            case .telemetry: try writer.submitTelemetry(submission.payload, completion: submission.completion)
            case .event: try writer.submitEvent(submission.payload, completion: submission.completion)
            default: throw IngestRefusal(reason: "\(submission.type) frames carry no data")
            }
        } catch let error as IngestRefusal {
            throw error
        } catch {
            throw IngestRefusal(reason: "\(error)")
        }
    }
}
