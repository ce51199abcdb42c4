import HorgosStore
import HorgosWire

/// The I/O side of one connection as a pure state machine: inputs in, actions out, no NIO, no clock.
///
/// It composes the protocol's session (``ProtocolSession``, which wraps the protocol's own state machine)
/// and owns what every protocol needs around it: the connection's life (awaiting the peer, open,
/// draining, closing, closed), read gating (the region's queue over its high watermark, the in-flight
/// window full, draining), the frames in flight to storage (by submission id; commits come back in any
/// order), the `vin:` check on every VIN a frame forwards, and the queue of answers (coalesced by the
/// protocol, written together at the next flush point: the end of a socket read, of a commit delivery
/// burst, or at once for events). ``ConnectionHandler`` performs the actions. Modelled on postgres-nio's
/// `ConnectionStateMachine`.
///
/// ```
///   awaitingPeer --peerAdmitted--> open --peer's goodbye / quiesce / idle--> draining --in flight 0--> closing
///        |                          |                                                                  |
///        +------- refused ----------+--------- error, revoked (close after the answers) ------------> closing --> closed
/// ```
public struct ConnectionStateMachine<Session: ProtocolSession> {
    /// Where the connection is in its life.
    public enum State: Sendable, Hashable {
        /// TLS handshake (or PROXY header) in progress: no session yet.
        case awaitingPeer
        /// Reading and answering frames.
        case open
        /// No more frames are read; frames in flight are still committed and answered, then it closes.
        case draining
        /// A close is decided: the last answers are written, then the connection closes.
        case closing
        /// The connection is gone.
        case closed
    }

    /// What the handler must do after an input (one type for every protocol, see ``ConnectionAction``).
    public typealias Action = ConnectionAction

    public private(set) var state: State = .awaitingPeer
    /// The protocol's session (nil before the peer is admitted).
    public private(set) var session: Session?
    /// True once `session` is set (checked instead of `session != nil`, which copies the session).
    private var hasSession = false
    /// Frames handed to storage and not yet committed, at most `maxInFlight` before reading stops.
    public let maxInFlight: Int
    private let isVINRevoked: (VIN) -> Bool
    private var output = SessionOutput<Session>()
    private var inFlight = InFlightFrames<Session.Pending>()
    private var regionFull = false
    private var readPending = false
    private var closeAfterWrite = false
    /// Answers (or a close) wait for the next flush point.
    public private(set) var needsFlush = false

    /// A machine whose window is `maxInFlight` frames and whose `vin:` check is `isVINRevoked`.
    public init(maxInFlight: Int, isVINRevoked: @escaping (VIN) -> Bool) {
        self.maxInFlight = max(1, maxInFlight)
        self.isVINRevoked = isVINRevoked
    }

    /// Frames handed to storage and not yet committed.
    public var framesInFlight: Int { inFlight.count }

    /// True once a peer was admitted (its session exists).
    public var isAdmitted: Bool { hasSession }

    /// True while reading is held because the region's queue is above its high watermark.
    public var isRegionFull: Bool { regionFull }

    /// Answers waiting to be written.
    public var queuedAnswers: Int { output.answers.count }

    // MARK: Peer

    /// The peer passed admission: the session starts.
    public mutating func peerAdmitted(_ session: Session) {
        guard state == .awaitingPeer else { return }
        self.session = session
        hasSession = true
        state = .open
    }

    /// The peer was refused (the handler writes the protocol's refusal, then closes).
    public mutating func peerRefused() {
        if state == .awaitingPeer { state = .closing }
    }

    // MARK: Reading

    /// A frame (or a named decoding failure) was decoded.
    public mutating func frameDecoded(_ inbound: Session.Inbound, nowMs: Int64) -> Action {
        guard state == .open, hasSession else { return .none }
        session!.received(inbound, nowMs: nowMs, into: &output)
        guard let request = output.store else { return settle(immediately: false) }
        output.store = nil
        if let vin = request.forwardedVIN, isVINRevoked(vin) {
            session!.refused(request.pending, revokedVIN: vin, records: request.records, into: &output)
            output.refusedVIN = vin
            return settle(immediately: false)
        }
        if case .close = settle(immediately: false) { return .close }
        guard state == .open || state == .draining else { return .none }
        return .store(
            id: inFlight.insert(request.pending),
            FrameToStore(
                payload: request.payload, kind: request.kind, records: request.records,
                queuedBytes: request.queuedBytes))
    }

    /// The VIN the last input refused because it is revoked, once (the handler counts and logs it).
    public mutating func takeRefusedVIN() -> VIN? {
        defer { output.refusedVIN = nil }
        return output.refusedVIN
    }

    /// The decoder threw.
    public mutating func decodingFailed(_ error: any Error) -> Action {
        guard state == .open || state == .draining, hasSession else { return .close }
        session!.decodingFailed(error, into: &output)
        return settle(immediately: true)
    }

    /// The socket read is complete: the answers of its frames are written now.
    public mutating func readComplete() -> Action {
        needsFlush ? flush() : .none
    }

    /// The pipeline asks to read: pass it on unless reading is held (region full, window full, draining).
    public mutating func readRequested() -> Action {
        if canRead { return .read }
        readPending = true
        return .none
    }

    /// The region's queue fell below its low watermark.
    public mutating func regionHasRoom() -> Action {
        regionFull = false
        return releaseHeldRead()
    }

    // MARK: Storage

    /// The frame was handed to storage; `regionAboveHighWatermark`: its region's queue is now above the
    /// high watermark and the handler registered for ``regionHasRoom()``.
    public mutating func submitted(regionAboveHighWatermark: Bool) {
        if regionAboveHighWatermark { regionFull = true }
    }

    /// Storage refused the frame `id`.
    public mutating func storageRefused(_ id: UInt32, reason: String) -> Action {
        guard let pending = inFlight.remove(id), hasSession, state != .closed else { return .none }
        session!.storageRefused(pending, reason: reason, into: &output)
        return settle(immediately: true)
    }

    /// The frame `id` is committed (on the event loop, in a commit delivery burst: the answers wait for its
    /// end, see ``needsFlush``). Returns `.read` when a held read may go on.
    public mutating func committed(_ id: UInt32, outcome: CommitOutcome) -> Action {
        guard let pending = inFlight.remove(id), hasSession else { return .none }
        guard state == .open || state == .draining else { return .none }
        session!.committed(pending, outcome: outcome, into: &output)
        if case .close = settle(immediately: false) { return .close }
        return releaseHeldRead()
    }

    // MARK: Events

    /// The server drains (SIGTERM): finish what is in flight, say the protocol's goodbye, close.
    public mutating func quiesce() -> Action { end(.serverShutdown) }

    /// No complete frame within the idle timeout.
    public mutating func idleTimeout() -> Action { end(.idleTimeout) }

    /// A reload revoked the peer's certificate.
    public mutating func certificateRevoked() -> Action { end(.certificateRevoked) }

    /// The connection closed (either side).
    public mutating func closed() {
        guard state != .closed else { return }
        state = .closed
        session?.closed()
        output.answers.removeAll()
    }

    // MARK: Writing

    /// The queued answers and a close, now (the flush point of a commit burst or an event).
    public mutating func flush() -> Action {
        needsFlush = false
        let handshakeComplete = output.handshakeComplete
        output.handshakeComplete = false
        guard !output.answers.isEmpty || closeAfterWrite || handshakeComplete else { return .none }
        let close = closeAfterWrite
        closeAfterWrite = false
        return .write(close: close, handshakeComplete: handshakeComplete)
    }

    /// Encodes the queued answers into `buffer` (in order) and empties the queue.
    public mutating func encodeAnswers(nowMs: Int64, into buffer: inout ByteBuffer) {
        guard hasSession else { return }
        // By index: iterating the array itself would keep a second reference to its storage, and emptying
        // it afterwards would then allocate a new one for every write.
        for index in output.answers.indices { session!.encode(output.answers[index], nowMs: nowMs, into: &buffer) }
        output.answers.removeAll(keepingCapacity: true)
    }

    // MARK: Internals

    /// Reading goes on while the peer is being admitted (the TLS handshake reads) and while open, unless the
    /// region is full or the in-flight window is.
    private var canRead: Bool {
        (state == .open || state == .awaitingPeer) && !regionFull && inFlight.count < maxInFlight
    }

    private mutating func releaseHeldRead() -> Action {
        guard readPending, canRead else { return .none }
        readPending = false
        return .read
    }

    private mutating func end(_ reason: SessionEnd) -> Action {
        switch state {
        case .awaitingPeer:
            state = .closing
            return .close
        case .open, .draining:
            session!.end(reason, into: &output)
            if state == .open && output.close == nil { state = .draining }
            return settle(immediately: true)
        case .closing, .closed:
            return .none
        }
    }

    /// Applies what the session asked for after an input: stop reading, close, flush.
    private mutating func settle(immediately: Bool) -> Action {
        if output.stopReading {
            output.stopReading = false
            if state == .open { state = .draining }
        }
        if let close = output.close {
            output.close = nil
            if state != .closed { state = .closing }
            if close == .now {
                output.answers.removeAll(keepingCapacity: true)
                needsFlush = false
                return .close
            }
            closeAfterWrite = true
        }
        if state == .draining && inFlight.isEmpty {
            state = .closing
            closeAfterWrite = true
        }
        guard !output.answers.isEmpty || closeAfterWrite || output.handshakeComplete else { return .none }
        if immediately { return flush() }
        needsFlush = true
        return .none
    }
}

/// What the handler must do after an input of its ``ConnectionStateMachine``.
public enum ConnectionAction {
    /// Nothing now.
    case none
    /// Pass the held read request on to the socket.
    case read
    /// Hand the frame to storage under `id`; then report ``ConnectionStateMachine/submitted(regionAboveHighWatermark:)``
    /// or ``ConnectionStateMachine/storageRefused(_:reason:)``, and its commit with
    /// ``ConnectionStateMachine/committed(_:outcome:)``.
    case store(id: UInt32, FrameToStore)
    /// Write the queued answers (``ConnectionStateMachine/encodeAnswers(nowMs:into:)``) in one write and flush
    /// it; end the handshake timer when `handshakeComplete`; close once written when `close`.
    case write(close: Bool, handshakeComplete: Bool)
    /// Close now; nothing more is sent.
    case close
}

/// A frame to hand to its region's journal sink (what is kept for its answer stays in the machine).
public struct FrameToStore {
    /// What the journal stores.
    public var payload: ByteBuffer
    /// Which journal entry it is.
    public var kind: IngestKind
    /// Records it carries.
    public var records: Int
    /// What the region's queue counts for it until the commit.
    public var queuedBytes: Int
}

import NIOCore
