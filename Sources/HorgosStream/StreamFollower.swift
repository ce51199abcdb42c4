import Foundation
import HorgosNATS
import HorgosStore
import HorgosWire
import Logging
import NIOCore
import Synchronization

/// One followed region as `/status` shows it.
public struct RegionFollowStatus: Sendable, Hashable {
    /// `connecting` (no consumer yet), `catching_up`, `following`, `failed`.
    public var state = "connecting"
    /// The follower has applied everything the stream held for the region (or `follow.catch_up_timeout_seconds`
    /// passed): `/health/CC` answers 200 only then.
    public var caughtUp = false
    /// Messages the stream still holds for this follower, plus those received and not yet durable here.
    public var lagEntries = 0
    /// Age of the newest applied entry's arrival at its origin, seconds (0 before the first).
    public var lagSeconds: Double = 0
    /// Entries of other nodes copied into this node's journal since start.
    public var applied = 0
    /// This node's own entries seen on the stream (not applied again).
    public var skippedOwn = 0
    /// Messages that were not a Horgos record or whose payload the store refused (logged, skipped).
    public var invalid = 0
    public var lastError: String?
}

/// Follows regions this node holds a copy of: a durable pull consumer per region on
/// `<prefix>.<CC>.>` (`horgos_<node>_<CC>`), each message's `journal_payload` submitted to the region's
/// journal as an entry of its origin (`RegionWriter.submitFollowed`: same kind, same arrival time), and
/// acknowledged to JetStream (AckAll, in order) once that journal round is durable. The appliers then
/// apply it like any entry: idempotently, so a redelivery is a duplicate. The node's own entries on
/// the stream are skipped.
///
/// Runs on the NATS connection's event loop. A region is "caught up" once a pull finds nothing more
/// (or the last message said nothing is pending) and everything received is durable here.
public final class StreamFollower: @unchecked Sendable {
    public struct Settings: Sendable {
        public var node: String
        public var subjectPrefix: String
        public var streamName: String
        public var regions: [Region]
        /// Messages asked for per pull.
        public var batch = 256
        /// Received messages not yet durable here, at most (beyond it the follower stops pulling).
        public var maxInFlight = 4096
        /// JetStream redelivers a message not acknowledged within this.
        public var ackWait: TimeAmount = .seconds(60)
        /// How long a pull waits on the server for messages.
        public var pullExpires: TimeAmount = .seconds(2)
        /// After this long without catching up (the stream unreachable), report the region healthy anyway;
        /// nil: never.
        public var catchUpTimeout: TimeAmount?

        public init(node: String, subjectPrefix: String, streamName: String, regions: [Region]) {
            self.node = node
            self.subjectPrefix = subjectPrefix
            self.streamName = streamName
            self.regions = regions
        }
    }

    private struct Delivery {
        var ackSubject: String?
        var done: Bool
        var pending: UInt64
        var arrivalMs: Int64
    }

    /// One followed region's state, confined to the connection's event loop.
    private final class RegionState: @unchecked Sendable {
        let region: Region
        let writer: RegionWriter
        let durable: String
        let inbox: String
        var consumerReady = false
        var creatingConsumer = false
        var pullOpen = false
        var pullRemaining = 0
        var pullDeadline: NIODeadline = .uptimeNanoseconds(0)
        var queue = CircularBuffer<Delivery>(initialCapacity: 256)
        var status = RegionFollowStatus()
        var lastPending: UInt64 = 0
        var lastAppliedArrivalMs: Int64 = 0
        var stopped = false

        init(region: Region, writer: RegionWriter, durable: String, inbox: String) {
            self.region = region
            self.writer = writer
            self.durable = durable
            self.inbox = inbox
        }
    }

    public let settings: Settings
    private let connection: NATSConnection
    private let logger: Logger
    private var eventLoop: any EventLoop { connection.eventLoop }
    private var regions: [Region: RegionState] = [:]
    private let shared = Mutex<[Region: RegionFollowStatus]>([:])
    private var startedAt: NIODeadline = .now()
    private var timer: RepeatedTask?
    private var stopped = false

    public init(settings: Settings, connection: NATSConnection, logger: Logger) {
        self.settings = settings
        self.connection = connection
        self.logger = logger
        shared.withLock { status in
            for region in settings.regions { status[region] = RegionFollowStatus() }
        }
    }

    /// The durable consumer name of a region (`horgos_<node>_<CC>`).
    public static func durableName(node: String, region: Region) -> String { "horgos_\(node)_\(region.code)" }

    /// Per followed region, a snapshot (any thread).
    public var status: [Region: RegionFollowStatus] { shared.withLock { $0 } }

    /// Whether `region` is caught up (any thread); true for a region this node does not follow.
    public func isCaughtUp(_ region: Region) -> Bool { shared.withLock { $0[region]?.caughtUp ?? true } }

    /// Starts following (any thread). The store must be running.
    public func start(store: ShardStore) {
        eventLoop.execute { [self] in
            startedAt = .now()
            for region in settings.regions {
                guard let writer = try? store.writer(for: region) else {
                    logger.error("follow: \(region) is not a configured region; not followed")
                    continue
                }
                let state = RegionState(
                    region: region, writer: writer,
                    durable: Self.durableName(node: settings.node, region: region),
                    inbox: "\(connection.inboxPrefix).f.\(region.code)")
                regions[region] = state
                connection.subscribe(state.inbox) { [unowned self] message in self.received(message, state) }
            }
            connection.onStateChange { [unowned self] connectionState in
                for state in self.regions.values {
                    state.pullOpen = false
                    state.pullRemaining = 0
                    if connectionState == .connected { self.ensureConsumer(state) }
                }
                self.publishStatus()
            }
            timer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) {
                [unowned self] _ in
                self.tick()
            }
            connection.start()
        }
    }

    /// Stops pulling (any thread). Received entries still become durable; their acks may not reach the
    /// stream, which then delivers them again after a restart (applied as duplicates).
    public func stop() -> EventLoopFuture<Void> {
        eventLoop.submit { [self] in
            stopped = true
            timer?.cancel()
            for state in regions.values { state.stopped = true }
            publishStatus()
        }
    }

    private func ensureConsumer(_ state: RegionState) {
        guard !state.creatingConsumer, !stopped else { return }
        state.creatingConsumer = true
        let jetStream = JetStreamContext(connection: connection)
        var wanted = JetStreamConsumerConfiguration(
            durableName: state.durable, filterSubject: "\(settings.subjectPrefix).\(state.region.code).>",
            ackWait: settings.ackWait.nanoseconds, maxAckPending: max(1024, settings.maxInFlight * 2))
        wanted.maxWaiting = 64
        let configuration = wanted
        let stream = settings.streamName
        let logger = self.logger
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask {
            do {
                try await jetStream.createDurableConsumer(stream: stream, configuration)
            } catch let error as JetStreamError where error.errorCode == 10013 || error.errorCode == 10148 {
                // It exists with other settings (an older version's): use it as it is.
                logger.warning(
                    "follow: consumer exists with other settings; used as it is",
                    metadata: ["consumer": "\(configuration.durableName)", "error": "\(error)"])
            }
        }
        promise.futureResult.whenComplete { [self] result in
            state.creatingConsumer = false
            switch result {
            case .success:
                state.consumerReady = true
                state.status.lastError = nil
                if state.status.state == "connecting" { state.status.state = "catching_up" }
                pull(state)
            case .failure(let error):
                state.status.lastError = "consumer \(state.durable): \(error)"
                eventLoop.scheduleTask(in: .seconds(2)) { [weak self] in
                    guard let self, self.connection.isConnected, !state.consumerReady else { return }
                    self.ensureConsumer(state)
                }
            }
            publishStatus()
        }
    }

    /// Asks for the next batch when no pull is open and there is room in flight.
    private func pull(_ state: RegionState) {
        guard !state.stopped, state.consumerReady, !state.pullOpen, connection.isConnected,
            state.queue.count < settings.maxInFlight
        else { return }
        let batch = min(settings.batch, settings.maxInFlight - state.queue.count)
        let body = "{\"batch\":\(batch),\"expires\":\(settings.pullExpires.nanoseconds)}"
        let sent = Array(body.utf8).withUnsafeBytes { bytes in
            connection.publish(
                subject: JetStreamContext.nextSubject(stream: settings.streamName, durable: state.durable),
                replyTo: state.inbox, payload: bytes)
        }
        guard sent else { return }
        state.pullOpen = true
        state.pullRemaining = batch
        state.pullDeadline = .now() + settings.pullExpires + .seconds(2)
    }

    private func received(_ message: NATSMessage, _ state: RegionState) {
        if let status = message.status, message.payload.readableBytes == 0 {
            switch status {
            case 100:
                return  // idle heartbeat
            case 404, 408:
                // The pull ended without (more) messages: everything the stream held was delivered.
                state.pullOpen = false
                if state.queue.isEmpty { markCaughtUp(state) }
            case 409:
                state.pullOpen = false
                state.status.lastError = "pull: \(status) \(message.headers?.statusDescription ?? "")"
                if message.headers?.statusDescription.lowercased().contains("deleted") == true {
                    state.consumerReady = false
                    ensureConsumer(state)
                }
            default:
                state.pullOpen = false
                state.status.lastError = "pull: status \(status)"
            }
            pull(state)
            return
        }
        if state.pullRemaining > 0 {
            state.pullRemaining -= 1
            if state.pullRemaining == 0 { state.pullOpen = false }
        }
        let ack = message.replyTo.flatMap(JetStreamAckSubject.init)
        let pending = ack?.pending ?? 0
        if message.headers?["Horgos-Node"] == settings.node {
            state.status.skippedOwn += 1
            state.queue.append(Delivery(ackSubject: message.replyTo, done: true, pending: pending, arrivalMs: 0))
            drain(state)
            pull(state)
            return
        }
        guard let fields = StreamRecordFields(message.payload.readableBytesView), fields.formatVersion >= 1,
            fields.region == state.region.code, !fields.node.isEmpty
        else {
            state.status.invalid += 1
            logger.warning(
                "follow: a message on \(message.subject) is not a Horgos stream record for \(state.region); skipped")
            state.queue.append(Delivery(ackSubject: message.replyTo, done: true, pending: pending, arrivalMs: 0))
            drain(state)
            pull(state)
            return
        }
        guard let kind = JournalEntryKind(rawValue: UInt8(truncatingIfNeeded: fields.kind)), fields.kind < 256 else {
            // A kind this version cannot apply (a newer node): stop here rather than skip data.
            state.status.state = "failed"
            state.status.lastError =
                "entry kind \(fields.kind) from node \(fields.node) (LSN \(fields.lsn)) is unknown to this version: "
                + "upgrade this node"
            state.stopped = true
            logger.error("follow: \(state.region) stopped", metadata: ["error": "\(state.status.lastError!)"])
            publishStatus()
            return
        }
        state.queue.append(
            Delivery(ackSubject: message.replyTo, done: false, pending: pending, arrivalMs: fields.arrivalTimeMs))
        let loop = eventLoop
        do {
            try state.writer.submitFollowed(
                kind, fields.journalPayload, arrivalMs: fields.arrivalTimeMs,
                origin: FollowedOrigin(node: fields.node, lsn: fields.lsn)
            ) { [weak self] _ in
                let follower = self
                loop.execute { follower?.completed(state) }
            }
        } catch {
            if error.kind == .invalidPayload {
                state.status.invalid += 1
                logger.warning(
                    "follow: the store refused an entry from the stream; skipped",
                    metadata: [
                        "region": "\(state.region)", "node": "\(fields.node)", "lsn": "\(fields.lsn)",
                        "error": "\(error)",
                    ])
                state.queue[state.queue.index(before: state.queue.endIndex)].done = true
                drain(state)
            } else {
                // The store is stopping or failed: stop following (the stream keeps the messages).
                state.stopped = true
                state.status.lastError = "\(error)"
            }
        }
        pull(state)
    }

    /// A submitted entry became durable here. Completions come back in submission order (one region,
    /// one journal, rounds in order), so it is the oldest delivery not yet done.
    private func completed(_ state: RegionState) {
        var i = state.queue.startIndex
        while i < state.queue.endIndex, state.queue[i].done { i = state.queue.index(after: i) }
        if i < state.queue.endIndex { state.queue[i].done = true }
        state.status.applied += 1
        drain(state)
        pull(state)
    }

    /// Pops the done head of the queue and acknowledges the last one popped (AckAll covers the rest).
    private func drain(_ state: RegionState) {
        var last: Delivery?
        while let head = state.queue.first, head.done {
            last = state.queue.removeFirst()
        }
        guard let last else { return }
        state.lastPending = last.pending
        if last.arrivalMs > 0 { state.lastAppliedArrivalMs = last.arrivalMs }
        if let subject = last.ackSubject {
            _ = Array("+ACK".utf8).withUnsafeBytes { bytes in
                connection.publish(subject: subject, payload: bytes)
            }
        }
        if last.pending == 0 && state.queue.isEmpty { markCaughtUp(state) }
    }

    private func markCaughtUp(_ state: RegionState) {
        guard !state.status.caughtUp else {
            state.status.state = "following"
            return
        }
        state.status.caughtUp = true
        state.status.state = "following"
        logger.notice(
            "follow: caught up with the stream",
            metadata: ["region": "\(state.region)", "applied": "\(state.status.applied)"])
        publishStatus()
    }

    private func tick() {
        let now = NIODeadline.now()
        for state in regions.values {
            // A pull the server never answered (the connection flapped): ask again.
            if state.pullOpen && now > state.pullDeadline { state.pullOpen = false }
            pull(state)
            if !state.status.caughtUp, let timeout = settings.catchUpTimeout, now - startedAt > timeout {
                state.status.caughtUp = true
                logger.warning(
                    "follow: not caught up with the stream after the catch-up timeout; reporting healthy anyway",
                    metadata: ["region": "\(state.region)", "error": "\(state.status.lastError ?? "-")"])
            }
        }
        publishStatus()
    }

    private func publishStatus() {
        let nowMs = StoreClock.systemMs()
        shared.withLock { shared in
            for (region, state) in regions {
                var s = state.status
                s.lagEntries = Int(state.lastPending) + state.queue.count
                s.lagSeconds =
                    state.lastAppliedArrivalMs > 0 && s.lagEntries > 0
                    ? max(0, Double(nowMs - state.lastAppliedArrivalMs) / 1000) : 0
                if !connection.isConnected && s.state != "failed" { s.state = "connecting" }
                shared[region] = s
            }
        }
    }
}
