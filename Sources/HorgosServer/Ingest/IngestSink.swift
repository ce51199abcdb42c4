import HorgosStore
import HorgosWire
import NIOCore

/// One validated data frame on its way to a region's writer.
public struct IngestSubmission: Sendable {
    /// The region (ISO code) the certificate's market selects.
    public var region: String
    public var type: FrameType
    /// The frame's payload, a slice of the receive buffer (no copy).
    public var payload: ByteBuffer
    /// Called once, on any thread, after the transaction holding every record has committed.
    /// Never called for a frame whose transaction failed: storage keeps it and retries.
    public var completion: @Sendable (CommitOutcome) -> Void
    /// The payload is a `GBT32960Entry` (a GB/T 32960 realtime or reissue frame), not a native frame.
    public var isGBT32960Entry = false

    public init(region: String, type: FrameType, payload: ByteBuffer,
                completion: @escaping @Sendable (CommitOutcome) -> Void) {
        self.region = region
        self.type = type
        self.payload = payload
        self.completion = completion
    }
}

extension IngestSubmission {
    /// A GB/T 32960 realtime or reissue frame as a `GBT32960Entry`, for `region`'s writer.
    public init(region: String, gbt32960Entry entry: ByteBuffer, completion: @escaping @Sendable (CommitOutcome) -> Void) {
        self.init(region: region, type: .telemetry, payload: entry, completion: completion)
        isGBT32960Entry = true
    }
}

/// Why storage would not take a frame (its queue is over its hard bound, or it is stopping).
///
/// The session answers with ERROR (`SERVER_BUSY`, retry) and closes: the client keeps the frame.
public struct IngestRefusal: Error, Sendable, Hashable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// Where sessions hand data frames: the regions' writers (or, in tests, a fake).
public protocol IngestSink: Sendable {
    /// Queues a frame for its region's writer; returns at once (never blocks an event loop).
    func submit(_ submission: IngestSubmission) throws(IngestRefusal)
}
