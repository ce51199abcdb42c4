import HorgosStore
import HorgosWire
import NIOCore

/// One validated frame on its way to its region's journal sink.
public struct IngestSubmission: Sendable {
    /// Which journal entry it is.
    public var kind: IngestKind
    /// What the journal stores: a native frame's payload (a slice of the receive buffer, no copy) or a
    /// `GBT32960Entry`.
    public var payload: ByteBuffer
    /// Called once, on any thread, after the journal round holding it is durable (and the outcome known).
    /// Never called for a frame whose round failed: storage keeps it and retries.
    public var completion: @Sendable (CommitOutcome) -> Void

    /// A submission from its parts.
    public init(kind: IngestKind, payload: ByteBuffer, completion: @escaping @Sendable (CommitOutcome) -> Void) {
        self.kind = kind
        self.payload = payload
        self.completion = completion
    }
}

/// Why storage would not take a frame (its queue is over its hard bound, or it is stopping).
///
/// The session answers with the protocol's refusal (native: ERROR `SERVER_BUSY`, retry) and closes: the
/// client keeps the frame.
public struct IngestRefusal: Error, Sendable, Hashable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// Where sessions hand data frames: the regions' writers (or, in tests, a fake).
///
/// A session resolves its region's sink once (``sink(for:)``, inside its ``RegionHandle``); nothing on the
/// per-frame path looks a region up. A fake that takes every region's frames only implements ``submit(_:)``.
public protocol IngestSink: Sendable {
    /// The sink of `region`, or nil when this store does not serve it.
    func sink(for region: Region) -> (any IngestSink)?
    /// Queues a frame; returns at once (never blocks an event loop).
    func submit(_ submission: IngestSubmission) throws(IngestRefusal)
}

extension IngestSink {
    /// One sink for every region.
    public func sink(for region: Region) -> (any IngestSink)? { self }
}
