import HorgosStore
import HorgosWire
import NIOCore

/// A wire protocol the connection pipeline serves, as a plug-in: everything a protocol supplies, and
/// nothing the pipeline already does for every protocol.
///
/// ```
///            Listener<P> (configuration + a protocol value P)
/// socket -> PROXY v2 -> TLS + admission -> timers -> P.Decoder -> ConnectionHandler<P> -> journal
///                                                                  | ConnectionStateMachine<P.Session>
///                                                                  |   (read gating, in-flight window,
///                                                                  |    answer coalescing, drain, close)
///                                                                  | P.Session (the protocol's own
///                                                                  |   session state machine)
/// ```
///
/// A protocol supplies its frame decoder (``makeDecoder(maxPayload:)``), its session
/// (``ProtocolSession``: its state machine, how it answers, which VIN a frame claims, what is stored),
/// how a verified certificate maps to its peer (``peer(for:)``), and its name for metrics and logs.
/// PROXY v2, TLS, admission, the handshake and idle timers, the byte budget, the one connection registry,
/// revocation, `limits.*` reloads, the drain, commit delivery and metrics are the pipeline's, written once.
/// Horgos's own protocol is ``NativeProtocol``, GB/T 32960 ``GBT32960Protocol``; `ARCHITECTURE.md` lists
/// what a third (JT/T 808) would write.
public protocol IngestProtocol: Sendable {
    /// The frame decoder of one connection (a NIO `ByteToMessageDecoder`).
    associatedtype Decoder: ByteToMessageDecoder
    /// One connection's protocol state.
    associatedtype Session: ProtocolSession where Session.Inbound == Decoder.InboundOut

    /// The protocol's name: the `protocol` label of the pipeline's metrics, and in logs (`native`, `gbt32960`).
    static var name: String { get }

    /// A decoder for one connection that refuses a frame larger than `maxPayload` from its header alone.
    func makeDecoder(maxPayload: Int) -> Decoder

    /// The peer a verified certificate names for this protocol (vehicle, gateway, platform), or why it is
    /// refused. The pipeline has already checked the chain, the deny list and that the market is served.
    func peer(for identity: PeerIdentity) -> Result<Session.Peer, SessionRefusal>

    /// A session for an admitted peer on one connection.
    func makeSession(peer: Session.Peer, context: SessionContext) -> Session

    /// The bytes of the receive stream `inbound` was decoded from (the byte budget releases them).
    static func consumedBytes(_ inbound: Session.Inbound) -> Int

    /// What a peer refused after the TLS handshake is told before the connection closes (nothing when
    /// the protocol has no such message).
    func encodeRefusal(_ refusal: SessionRefusal, into buffer: inout ByteBuffer)
}

/// One connection's protocol state: a pure struct around the protocol's session state machine.
///
/// The pipeline feeds it decoded frames, commit outcomes and connection events; it answers by filling a
/// ``SessionOutput`` (answers to send, a frame to store, a close). It performs no I/O: answers are
/// values, encoded by ``encode(_:nowMs:into:)`` when the pipeline writes them (coalesced per burst).
public protocol ProtocolSession {
    /// What the protocol's decoder produces.
    associatedtype Inbound
    /// Who is on the connection, in the protocol's terms.
    associatedtype Peer: Sendable
    /// What a stored frame needs for its answer once committed (native: its sequence; GB/T: its header).
    associatedtype Pending
    /// An answer to the peer (encoded when written).
    associatedtype Answer

    /// The region (ISO code) the peer's data goes to.
    var market: String { get }
    /// The peer's role for metrics and logs (`vehicle`, `gateway`, `platform`).
    var role: String { get }

    /// A frame (or a named decoding failure) arrived.
    mutating func received(_ inbound: Inbound, nowMs: Int64, into output: inout SessionOutput<Self>)
    /// The frame stored as `pending` is committed (or the commit rejected some of its records).
    mutating func committed(_ pending: Pending, outcome: CommitOutcome, into output: inout SessionOutput<Self>)
    /// The frame stored as `pending` claims `vin`, which the deny list revokes: refuse it the protocol's way
    /// (it is not stored).
    mutating func refused(_ pending: Pending, revokedVIN vin: VIN, records: Int, into output: inout SessionOutput<Self>)
    /// Storage would not take the frame stored as `pending` (its queue is over its bound, or it is stopping).
    mutating func storageRefused(_ pending: Pending, reason: String, into output: inout SessionOutput<Self>)
    /// The decoder threw (a protocol whose decoder reports failures as values never sees this).
    mutating func decodingFailed(_ error: any Error, into output: inout SessionOutput<Self>)
    /// The server ends the session: drain (SIGTERM), idle timeout, or the certificate was revoked.
    mutating func end(_ reason: SessionEnd, into output: inout SessionOutput<Self>)
    /// The connection closed.
    mutating func closed()

    /// Merges `next` into `previous` when one answer says both (native: cumulative ACKs); false otherwise.
    static func coalesce(_ previous: inout Answer, with next: Answer) -> Bool
    /// Appends `answer`'s bytes to `buffer`.
    mutating func encode(_ answer: Answer, nowMs: Int64, into buffer: inout ByteBuffer)
}

/// Why the server ends a session.
public enum SessionEnd: Sendable, Hashable {
    /// The daemon drains (SIGTERM): answer what is committed, say goodbye, close.
    case serverShutdown
    /// No complete frame within `limits.idle_timeout_seconds`.
    case idleTimeout
    /// A reload revoked the session's certificate: refuse and close now, nothing more is answered.
    case certificateRevoked
}

/// A frame the session hands to storage.
public struct StoreRequest<Pending> {
    /// Kept until the commit comes back, then given to ``ProtocolSession/committed(_:outcome:into:)``.
    public var pending: Pending
    /// What the journal stores (a slice of the receive buffer, or the protocol's entry).
    public var payload: ByteBuffer
    /// Which journal entry it is.
    public var kind: IngestKind
    /// Records it carries (for `horgos_records_total`).
    public var records: Int
    /// What the region's queue counts for it until the commit (native: the frame; GB/T 32960: the entry).
    public var queuedBytes: Int
    /// A VIN the frame carries for another vehicle than the certificate's own (a gateway's or a platform's
    /// frame): the pipeline checks it against the deny list's `vin:` entries before storing.
    public var forwardedVIN: VIN?

    /// A request from its parts.
    public init(
        pending: Pending, payload: ByteBuffer, kind: IngestKind, records: Int, queuedBytes: Int, forwardedVIN: VIN?
    ) {
        self.pending = pending
        self.payload = payload
        self.kind = kind
        self.records = records
        self.queuedBytes = queuedBytes
        self.forwardedVIN = forwardedVIN
    }
}

/// How the session wants the connection closed.
public enum SessionClose: Sendable, Hashable {
    /// After the queued answers are written (ERROR, BYE, a final answer).
    case afterAnswers
    /// At once; nothing more can be sent (the peer's stream ended inside a frame, plain garbage).
    case now
}

/// What a session asks of the pipeline after an input: answers (queued, coalesced and written together),
/// a frame to store, that reading stops, that the handshake timer ends, or a close.
public struct SessionOutput<Session: ProtocolSession> {
    /// Answers not yet written, in order.
    public internal(set) var answers: [Session.Answer] = []
    /// The frame of this input to store.
    public var store: StoreRequest<Session.Pending>?
    /// The peer is now known to the protocol (HELLO accepted, login answered): the handshake timer ends.
    public var handshakeComplete = false
    /// Nothing more is read (the peer said goodbye); pending frames are still answered.
    public var stopReading = false
    /// Close the connection.
    public var close: SessionClose?
    /// A VIN refused because the deny list revokes it (counted as a `CERTIFICATE_REVOKED` refusal).
    public var refusedVIN: VIN?

    /// An empty output.
    public init() {}

    /// Queues `answer`, merged into the last queued one when the protocol can say both in one.
    public mutating func answer(_ answer: Session.Answer) {
        if !answers.isEmpty && Session.coalesce(&answers[answers.count - 1], with: answer) { return }
        answers.append(answer)
    }
}

/// The journal entry kinds the pipeline hands to storage.
public enum IngestKind: Sendable, Hashable {
    /// A native TELEMETRY payload.
    case telemetry
    /// A native EVENT payload.
    case event
    /// A `GBT32960Entry` (a GB/T 32960 realtime or reissue frame with its time base).
    case gbt32960
}

/// What a session gets from the pipeline when it is made.
public struct SessionContext: Sendable {
    /// The connection it runs on.
    public var connection: ConnectionReference
    /// True when the deny list revokes `vin` (`vin:` entries, reloadable): for VINs a session checks itself
    /// (a GB/T 32960 platform's vehicle login); frames to store are checked by the pipeline.
    public var isVINRevoked: @Sendable (VIN) -> Bool

    /// A context from its parts.
    public init(connection: ConnectionReference, isVINRevoked: @escaping @Sendable (VIN) -> Bool) {
        self.connection = connection
        self.isVINRevoked = isVINRevoked
    }
}

/// Identifies one connection to its session, and closes it (a GB/T 32960 login that takes a VIN over
/// closes the connection that held it).
public struct ConnectionReference: Sendable, Hashable {
    /// Unique while the connection lives.
    public let id: ObjectIdentifier
    private let channel: any Channel

    /// A reference to `channel`.
    public init(_ channel: any Channel) {
        self.id = ObjectIdentifier(channel)
        self.channel = channel
    }

    /// Closes the connection (any thread).
    public func close() { channel.close(promise: nil) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// Why a connection is refused after its TLS handshake (the protocol's refusal code and the logged reason).
public struct SessionRefusal: Error, Sendable, Hashable {
    /// The refusal in the native protocol's ERROR codes (the `code` label of `horgos_refusals_total`).
    public var code: ErrorCode
    /// Why, for the log.
    public var reason: String

    /// A refusal from its parts.
    public init(code: ErrorCode, reason: String) {
        self.code = code
        self.reason = reason
    }
}
