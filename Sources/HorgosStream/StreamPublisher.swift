import Foundation
import HorgosNATS
import HorgosStore
import HorgosWire
import Logging
import NIOCore
import Synchronization

/// Publishing lag of one region: its journal entries not yet acknowledged by JetStream.
public struct RegionPublishLag: Sendable, Hashable {
    /// The region's last entry on the stream (persisted in `<state>/stream/published`).
    public var publishedLSN: UInt64 = 0
    public var entries = 0
    public var bytes = 0
    /// Age of the region's oldest unpublished entry (to within the publish window's span), 0 when none.
    public var seconds: Double = 0
    /// Its new frames wait: `bytes` reached `stream.max_lag_bytes`.
    public var heldBack = false

    public init(publishedLSN: UInt64 = 0) { self.publishedLSN = publishedLSN }
}

/// The publisher's counters and state (a snapshot for `/status` and `/metrics`).
public struct StreamPublisherSnapshot: Sendable, Hashable {
    public var connection = NATSConnection.Snapshot()
    /// Every entry at or below this LSN is on the stream (or never to be published).
    public var publishedLSN: UInt64 = 0
    /// Entries acknowledged by JetStream since start (duplicates included).
    public var published = 0
    /// Of those, entries JetStream already had (a republish after a restart or a lost ack).
    public var duplicates = 0
    /// Publishes sent again (after a timeout, an error or a reconnect).
    public var resends = 0
    /// Publishes JetStream answered with an error, by reason.
    public var errors: [String: Int] = [:]
    /// Sent and not yet acknowledged, now.
    public var outstanding = 0
    /// `replicated`: ACKs waiting for the stream, now.
    public var heldAcknowledgements = 0
    /// The stream's name and whether Horgos found or created it (nil: not yet).
    public var streamReady = false
    public var lastError: String?
    public var regions: [Region: RegionPublishLag] = [:]
    /// Buckets (upper bounds, µs) and counts of the time from an entry being durable to JetStream's ack.
    public var ackLatencyCounts = [Int](repeating: 0, count: StreamPublisherSnapshot.ackLatencyBucketsUs.count + 1)
    public var ackLatencySumUs = 0
    public static let ackLatencyBucketsUs = [
        500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
        1_000_000, 5_000_000,
    ]
}

/// Follows the journal after its published LSN and publishes every entry to JetStream, in LSN order,
/// on `<prefix>.<CC>.<kind>` with `Nats-Msg-Id: <node>:<LSN>` (Proto/STREAM.md), with at most
/// `maxOutstanding` publishes awaiting their ack.
///
/// Runs on the NATS connection's event loop. A publish that fails (an error answer, no answer within
/// `ackTimeout`, a dropped connection) is sent again with everything after it, in order, after a short
/// backoff: the stream's duplicate window drops what it already stored. An erase (kind 4) is a barrier:
/// it is sent alone, after every earlier entry is acknowledged, and nothing after it is sent before its
/// ack, so it sits in the stream after the rows it erases and before later ones. The contiguous
/// acknowledged watermark drives the retention hold and the `replicated` gate and is persisted.
public final class StreamPublisher: @unchecked Sendable {
    /// What the publisher needs to know.
    public struct Settings: Sendable {
        public var node: String
        public var subjectPrefix: String
        public var streamName: String
        public var stateDirectory: String
        public var regions: [Region]
        public var maxOutstanding: Int
        public var maxLagBytes: Int
        public var ackTimeout: TimeAmount
        public var horizon: TimeHorizon
        /// Whether a region's entries may leave the node (compliance policy, issue 22); default all.
        public var streams: @Sendable (Region) -> Bool
        /// The stream created when it does not exist yet.
        public var definition: StreamDefinition

        public init(
            node: String, subjectPrefix: String, streamName: String, stateDirectory: String, regions: [Region],
            maxOutstanding: Int, maxLagBytes: Int, ackTimeout: TimeAmount = .seconds(5), horizon: TimeHorizon,
            definition: StreamDefinition, streams: @escaping @Sendable (Region) -> Bool = { _ in true }
        ) {
            self.definition = definition
            self.node = node
            self.subjectPrefix = subjectPrefix
            self.streamName = streamName
            self.stateDirectory = stateDirectory
            self.regions = regions
            self.maxOutstanding = maxOutstanding
            self.maxLagBytes = maxLagBytes
            self.ackTimeout = ackTimeout
            self.horizon = horizon
            self.streams = streams
        }
    }

    private enum EntryState {
        case skipped
        case unsent
        case sent(atNs: UInt64)
        case acked
    }

    private struct Entry {
        let lsn: UInt64
        let region: Region
        let entryBytes: Int
        let arrivalMs: Int64
        let durableNs: UInt64
        var frame: ByteBuffer?
        var state: EntryState
        let barrier: Bool
    }

    private struct RegionCounters {
        var scannedEntries = 0
        var scannedBytes = 0
        var publishedEntries = 0
        var publishedBytes = 0
        var publishedLSN: UInt64 = 0
    }

    public let settings: Settings
    /// Registered with the journal before the store starts (`JournalHooks.holds`).
    public let hold: StreamRetentionHold
    /// `replicated` only (`JournalHooks.gate`).
    public let gate: StreamAcknowledgementGate?
    private let logger: Logger
    private let connection: NATSConnection
    private var eventLoop: any EventLoop { connection.eventLoop }
    private let publishInbox: String
    private let startFile: PublishedLSNFile

    // Confined to the event loop.
    private var store: ShardStore?
    private var reader: JournalReader?
    private var scanner: JournalReader?
    private var encoder: StreamRecordEncoder
    private var window = CircularBuffer<Entry>(initialCapacity: 1024)
    private var inFlight = 0
    private var watermark: UInt64
    private var counters: [Region: RegionCounters] = [:]
    private var pausedUntilNs: UInt64 = 0
    private var backoffMs = 50
    private var pumpScheduled = false
    private var lastRetireNs: UInt64 = 0
    private var lastRetiredWatermark: UInt64
    private var stats = StreamPublisherSnapshot()
    private var stopped = false
    private var timer: RepeatedTask?
    private var headersTemplate: [UInt8]
    /// The LSN of an erase sent or waiting to be sent: nothing after it is read until it is acknowledged.
    private var pendingBarrier: UInt64?

    private let shared = Mutex(StreamPublisherSnapshot())
    private let persisted = Mutex<PublishedLSNFile?>(nil)
    private let wakePending = Atomic<Bool>(false)

    /// Reads `<state>/stream/published` and prepares the hold (and the gate when `replicated`); call
    /// `start(store:)` once the store exists.
    public init(settings: Settings, connection: NATSConnection, replicated: Bool, logger: Logger) {
        self.settings = settings
        self.connection = connection
        self.logger = logger
        var file = PublishedLSNFile.read(stateDirectory: settings.stateDirectory)
        if let node = file.node, node != settings.node {
            logger.warning(
                """
                stream: the published-LSN file was written by node \(node), this node is \(settings.node); \
                entries after its LSN are published under the new id
                """)
        }
        file.node = settings.node
        file.stream = settings.streamName
        startFile = file
        watermark = file.lsn
        lastRetiredWatermark = file.lsn
        hold = StreamRetentionHold(published: file.lsn, regions: settings.regions)
        gate = replicated ? StreamAcknowledgementGate(published: file.lsn, streams: settings.streams) : nil
        encoder = StreamRecordEncoder(node: settings.node, horizon: settings.horizon)
        publishInbox = connection.inboxPrefix + ".p"
        headersTemplate = Array("NATS/1.0\r\nHorgos-Format: 1\r\nHorgos-Node: \(settings.node)\r\n".utf8)
        for region in settings.regions { counters[region] = RegionCounters(publishedLSN: file.regions[region] ?? 0) }
        stats.publishedLSN = file.lsn
        let initial = stats
        shared.withLock { $0 = initial }
    }

    /// The journal callback that wakes the publisher after each durable round (`JournalHooks.durable`).
    public var durableCallback: @Sendable (UInt64) -> Void {
        { [weak self] _ in self?.wake() }
    }

    /// Starts reading the journal and publishing (any thread).
    public func start(store: ShardStore) {
        eventLoop.execute { [self] in
            self.store = store
            reader = store.journalReader(after: watermark)
            scanner = store.journalReader(after: watermark)
            connection.subscribe(publishInbox + ".*") { [unowned self] message in self.acknowledged(message) }
            connection.onStateChange { [unowned self] state in
                if state == .connected {
                    self.ensureStream()
                } else {
                    self.rewind(reason: state == .closed ? nil : "connection \(state.rawValue)")
                }
            }
            connection.onWritable { [unowned self] in self.pump() }
            timer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) {
                [unowned self] _ in
                self.tick()
            }
            connection.start()
            pump()
        }
    }

    /// Stops publishing (any thread); returns once the last published LSNs are written. Entries not
    /// yet acknowledged stay in the journal and are published after the next start.
    public func stop() -> EventLoopFuture<Void> {
        eventLoop.submit { [self] in
            stopped = true
            timer?.cancel()
            publishSnapshot()
            persistIfChanged()
        }
    }

    /// A snapshot of the counters (any thread).
    public var snapshot: StreamPublisherSnapshot {
        var s = shared.withLock { $0 }
        s.connection = connection.snapshot
        s.heldAcknowledgements = gate?.waiting ?? 0
        return s
    }

    /// Wakes the loop (any thread; coalesced).
    public func wake() {
        if wakePending.exchange(true, ordering: .acquiringAndReleasing) { return }
        eventLoop.execute { [self] in
            wakePending.store(false, ordering: .releasing)
            pump()
        }
    }

    // MARK: The loop

    private func ensureStream() {
        let jetStream = JetStreamContext(connection: connection)
        let definition = settings.definition
        let logger = self.logger
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await definition.ensure(jetStream: jetStream, logger: logger) }
        promise.futureResult.whenComplete { [self] result in
            switch result {
            case .success:
                stats.streamReady = true
                stats.lastError = nil
            case .failure(let error):
                stats.lastError = "stream \(definition.name): \(error)"
                logger.warning(
                    "stream: cannot find or create the stream; retrying",
                    metadata: ["stream": "\(definition.name)", "error": "\(error)"])
                eventLoop.scheduleTask(in: .seconds(2)) { [weak self] in
                    guard let self, self.connection.isConnected, !self.stats.streamReady else { return }
                    self.ensureStream()
                }
            }
            pump()
        }
    }

    private func tick() {
        let now = Self.monotonicNs()
        // The oldest publish without an answer for too long: send it and everything after it again.
        if let first = window.first(where: { if case .sent = $0.state { true } else { false } }),
            case .sent(let at) = first.state, now &- at > UInt64(settings.ackTimeout.nanoseconds)
        {
            rewind(reason: "no ack for LSN \(first.lsn) within \(settings.ackTimeout.nanoseconds / 1_000_000) ms")
        }
        pump()
        publishSnapshot()
        if now &- lastRetireNs > 1_000_000_000, watermark > lastRetiredWatermark, let store {
            lastRetireNs = now
            lastRetiredWatermark = watermark
            store.retireJournal()
        }
    }

    /// Scans new durable entries (lag accounting), then sends what the window allows.
    private func pump() {
        guard !stopped, let reader else { return }
        scan()
        updateAdmission()
        guard connection.isConnected, stats.streamReady else { return }
        let now = Self.monotonicNs()
        if now < pausedUntilNs {
            if !pumpScheduled {
                pumpScheduled = true
                eventLoop.scheduleTask(in: .nanoseconds(Int64(pausedUntilNs - now))) { [self] in
                    pumpScheduled = false
                    pump()
                }
            }
            return
        }
        var wrote = false
        // Entries sent before and rewound: again, in order. A barrier goes only as the window's head with
        // nothing in flight, and nothing after it goes before its ack.
        var index = window.startIndex
        while index < window.endIndex && inFlight < settings.maxOutstanding && connection.isWritable {
            let entry = window[index]
            if entry.barrier {
                if case .unsent = entry.state, index == window.startIndex, inFlight == 0 {
                    send(at: index, now: now)
                    wrote = true
                }
                break
            }
            if case .unsent = entry.state {
                send(at: index, now: now)
                wrote = true
            }
            index = window.index(after: index)
        }
        // New entries.
        let windowLimit = settings.maxOutstanding + 4096
        while pendingBarrier == nil && inFlight < settings.maxOutstanding && window.count < windowLimit
            && connection.isWritable
        {
            guard let record = reader.next() else { break }
            let region = record.region
            let published = counters[region]?.publishedLSN ?? 0
            // Copied from the stream by a follower, forbidden by the region's policy, or published before a
            // restart (the file's per-region LSN): not published (again).
            if record.followedOrigin != nil || !settings.streams(region) || record.lsn <= published {
                window.append(
                    Entry(
                        lsn: record.lsn, region: region, entryBytes: record.entryBytes, arrivalMs: record.arrivalMs,
                        durableNs: now, frame: nil, state: .skipped, barrier: false))
                continue
            }
            let barrier = record.kind == 4
            window.append(
                Entry(
                    lsn: record.lsn, region: region, entryBytes: record.entryBytes, arrivalMs: record.arrivalMs,
                    durableNs: now, frame: frame(for: record), state: .unsent, barrier: barrier))
            if barrier {
                pendingBarrier = record.lsn
                advanceWatermark()
                if window.count == 1 && inFlight == 0 {
                    send(at: window.startIndex, now: now)
                    wrote = true
                }
                break
            }
            send(at: window.index(before: window.endIndex), now: now)
            wrote = true
        }
        if wrote { connection.flush() }
        advanceWatermark()
        updateAdmission()
    }

    static func monotonicNs() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    private static func isDone(_ state: EntryState) -> Bool {
        switch state {
        case .acked, .skipped: true
        case .unsent, .sent: false
        }
    }

    /// The whole `HPUB` of an entry: subject, reply `<inbox>.p.<LSN>`, headers, record.
    private func frame(for record: JournalRecord) -> ByteBuffer {
        let facts = encoder.encode(record)
        let subject = "\(settings.subjectPrefix).\(record.region.code).\(facts.kindName)"
        var headers = ByteBufferAllocator().buffer(capacity: 256)
        headers.writeBytes(headersTemplate)
        headers.writeString(
            "Nats-Msg-Id: \(settings.node):\(record.lsn)\r\nHorgos-LSN: \(record.lsn)\r\nHorgos-Region: "
                + "\(record.region.code)\r\nHorgos-Kind: \(facts.kindName)\r\nHorgos-VIN: \(facts.vin)\r\n"
                + "Horgos-Protocol: \(facts.protocolName)\r\nHorgos-Arrival-Ms: \(record.arrivalMs)\r\n\r\n")
        var buffer = ByteBufferAllocator().buffer(
            capacity: encoder.record.readableBytes + headers.readableBytes + subject.utf8.count + 80)
        encoder.record.withUnsafeReadableBytes { body in
            NATSClientProtocol.writePublish(
                to: &buffer, subject: subject, replyTo: "\(publishInbox).\(record.lsn)", headers: headers,
                payload: body)
        }
        return buffer
    }

    private func send(at index: CircularBuffer<Entry>.Index, now: UInt64) {
        guard let frame = window[index].frame else { return }
        if case .unsent = window[index].state {} else { return }
        if connection.write(frame, flush: false) {
            window[index].state = .sent(atNs: now)
            inFlight += 1
        }
    }

    /// A reply on `<inbox>.p.<LSN>`.
    private func acknowledged(_ message: NATSMessage) {
        guard let dot = message.subject.lastIndex(of: "."),
            let lsn = UInt64(message.subject[message.subject.index(after: dot)...]),
            let first = window.first, lsn >= first.lsn
        else { return }
        let offset = Int(lsn - first.lsn)
        guard offset < window.count else { return }
        let index = window.index(window.startIndex, offsetBy: offset)
        let entry = window[index]
        guard entry.lsn == lsn else { return }
        let wasSent: Bool
        switch entry.state {
        case .sent: wasSent = true
        case .unsent: wasSent = false
        case .acked, .skipped: return
        }
        switch JetStreamPublishAck.parse(message) {
        case .stored(_, let duplicate):
            window[index].state = .acked
            window[index].frame = nil
            if wasSent { inFlight -= 1 }
            stats.published += 1
            if duplicate { stats.duplicates += 1 }
            backoffMs = 50
            let latencyUs = Int((Self.monotonicNs() &- entry.durableNs) / 1000)
            let bucket =
                StreamPublisherSnapshot.ackLatencyBucketsUs.firstIndex { latencyUs <= $0 }
                ?? StreamPublisherSnapshot.ackLatencyBucketsUs.count
            stats.ackLatencyCounts[bucket] += 1
            stats.ackLatencySumUs += latencyUs
            advanceWatermark()
            // One pump after the whole burst of acks this read delivered, not one per ack.
            wake()
        case .failed(let error):
            let reason = error.code == 503 ? "no_responders" : "jetstream_\(error.code)"
            stats.errors[reason, default: 0] += 1
            stats.lastError = "LSN \(lsn): \(error)"
            if wasSent {
                window[index].state = .unsent
                inFlight -= 1
            }
            // Everything after it was sent on the same footing: send it all again after a pause.
            rewind(reason: nil)
            pausedUntilNs = Self.monotonicNs() + UInt64(backoffMs) * 1_000_000
            backoffMs = min(backoffMs * 2, 2_000)
        }
    }

    /// Marks every sent, unacknowledged publish unsent (they are sent again, in order).
    private func rewind(reason: String?) {
        var count = 0
        var index = window.startIndex
        while index < window.endIndex {
            if case .sent = window[index].state {
                window[index].state = .unsent
                count += 1
            }
            index = window.index(after: index)
        }
        inFlight = 0
        stats.resends += count
        if let reason, count > 0 {
            stats.lastError = reason
            logger.notice(
                "stream: publishing again from the oldest unacknowledged entry",
                metadata: ["entries": "\(count)", "reason": "\(reason)"])
        }
    }

    /// Moves the contiguous acknowledged watermark over the acked and skipped head of the window.
    private func advanceWatermark() {
        var moved = false
        while let head = window.first, Self.isDone(head.state) {
            window.removeFirst()
            watermark = head.lsn
            if head.lsn == pendingBarrier { pendingBarrier = nil }
            if var c = counters[head.region] {
                c.publishedEntries += 1
                c.publishedBytes += head.entryBytes
                if case .acked = head.state { c.publishedLSN = head.lsn }
                counters[head.region] = c
            }
            moved = true
        }
        guard moved else { return }
        hold.watermark.store(watermark, ordering: .releasing)
        gate?.advance(to: watermark)
    }

    /// Reads the headers of entries that became durable: per-region lag counts.
    private func scan() {
        guard let scanner else { return }
        while let record = scanner.next() {
            counters[record.region, default: RegionCounters()].scannedEntries += 1
            counters[record.region, default: RegionCounters()].scannedBytes += record.entryBytes
        }
    }

    /// Closes a region's admission at `stream.max_lag_bytes` of unpublished entries, opens it below 90 %.
    private func updateAdmission() {
        var wake = false
        for region in settings.regions where settings.streams(region) {
            guard let c = counters[region] else { continue }
            let lag = c.scannedBytes - c.publishedBytes
            let open = hold.admits(region)
            if open && lag >= settings.maxLagBytes {
                _ = hold.setAdmitted(region, false)
                logger.warning(
                    "stream: \(region) has \(lag) bytes unpublished (stream.max_lag_bytes): its frames wait",
                    metadata: ["region": "\(region)"])
            } else if !open && lag < settings.maxLagBytes - settings.maxLagBytes / 10 {
                wake = hold.setAdmitted(region, true) || wake
            }
        }
        if wake { store?.wakeJournal() }
    }

    private func publishSnapshot() {
        stats.publishedLSN = watermark
        stats.outstanding = inFlight
        let nowMs = StoreClock.systemMs()
        var oldest: [Region: Int64] = [:]
        for entry in window where !Self.isDone(entry.state) && oldest[entry.region] == nil {
            oldest[entry.region] = entry.arrivalMs
        }
        let lastArrival = window.last?.arrivalMs
        var regions: [Region: RegionPublishLag] = [:]
        for region in settings.regions {
            let c = counters[region] ?? RegionCounters()
            var lag = RegionPublishLag(publishedLSN: c.publishedLSN)
            lag.entries = max(0, c.scannedEntries - c.publishedEntries)
            lag.bytes = max(0, c.scannedBytes - c.publishedBytes)
            if lag.entries > 0, let arrival = oldest[region] ?? lastArrival {
                lag.seconds = max(0, Double(nowMs - arrival) / 1000)
            }
            lag.heldBack = !hold.admits(region)
            regions[region] = lag
        }
        stats.regions = regions
        shared.withLock { $0 = stats }
        var file = startFile
        file.lsn = watermark
        for (region, c) in counters where c.publishedLSN > 0 { file.regions[region] = c.publishedLSN }
        persisted.withLock { $0 = file }
    }

    /// Writes `<state>/stream/published` when it changed (called from the persistence queue).
    public func persistIfChanged() {
        guard let file = persisted.withLock({ $0 }) else { return }
        let changed: Bool = writtenLock.withLock { written in
            if written == file { return false }
            written = file
            return true
        }
        guard changed else { return }
        do {
            try file.write(stateDirectory: settings.stateDirectory)
        } catch {
            logger.warning(
                "stream: cannot write \(PublishedLSNFile.path(stateDirectory: settings.stateDirectory))",
                metadata: ["error": "\(error)"])
        }
    }
    private let writtenLock = Mutex<PublishedLSNFile?>(nil)
}

/// The stream Horgos creates when it does not exist (`stream.*` keys); an existing stream is used as it is.
public struct StreamDefinition: Sendable, Hashable {
    public var name: String
    public var subjects: [String]
    public var replicas: Int
    public var maxAgeSeconds: Int
    public var maxBytes: Int64
    public var duplicateWindowSeconds: Int

    public init(
        name: String, subjects: [String], replicas: Int, maxAgeSeconds: Int, maxBytes: Int64,
        duplicateWindowSeconds: Int
    ) {
        self.name = name
        self.subjects = subjects
        self.replicas = replicas
        self.maxAgeSeconds = maxAgeSeconds
        self.maxBytes = maxBytes
        self.duplicateWindowSeconds = duplicateWindowSeconds
    }

    var configuration: JetStreamStreamConfiguration {
        JetStreamStreamConfiguration(
            name: name, subjects: subjects, numReplicas: replicas, maxAge: Int64(maxAgeSeconds) * 1_000_000_000,
            maxBytes: maxBytes, duplicateWindow: Int64(duplicateWindowSeconds) * 1_000_000_000)
    }

    /// Finds the stream or creates it; logs what it found.
    func ensure(jetStream: JetStreamContext, logger: Logger) async throws {
        let (info, created) = try await jetStream.ensureStream(configuration)
        if created {
            logger.notice(
                "stream created", metadata: ["stream": "\(name)", "subjects": "\(subjects)", "replicas": "\(replicas)"])
        } else if info.config.numReplicas != replicas {
            logger.warning(
                "stream exists with another replica count than stream.replicas; it is used as it is",
                metadata: ["stream": "\(name)", "replicas": "\(info.config.numReplicas)", "configured": "\(replicas)"])
        }
        let covered = info.config.subjects.contains { $0 == subjects.first || $0 == ">" }
        if !covered {
            logger.warning(
                "stream's subjects do not cover this node's subject prefix: publishes will be refused",
                metadata: ["stream": "\(name)", "subjects": "\(info.config.subjects)", "needed": "\(subjects)"])
        }
    }
}
