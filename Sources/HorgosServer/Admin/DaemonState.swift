import Foundation
import Synchronization

/// The daemon's live, shared facts: serving or not, bound listeners, start time. Feeds `/health`,
/// `/status` and the systemd STATUS= line.
///
/// Thread-safe (a mutex around a small struct). The session layer will add per-region counters.
public final class DaemonState: Sendable {
    private struct Facts {
        var serving = false
        var listeners: [String: String] = [:]
        var ready: Set<String> = []
    }

    private let facts = Mutex(Facts())
    /// When the daemon started.
    public let startedAt: Date
    /// The regions served, for `/status`.
    public let regions: [String]
    /// Gives the number of open telemetry connections (set once the listener exists).
    private let connectionCount: Mutex<(@Sendable () -> Int)?> = Mutex(nil)
    /// Gives the regions' writer status (set once the store exists).
    private let regionReporter: Mutex<(@Sendable () -> [RegionStatus])?> = Mutex(nil)
    /// Gives total records and frames committed, for the rates.
    private let totalsReporter: Mutex<(@Sendable () -> (records: Int, frames: Int))?> = Mutex(nil)

    /// Gives the stream's part of `/status` (issue 20; set when `stream.servers` is configured).
    private let streamReporter: Mutex<(@Sendable () -> StreamStatus)?> = Mutex(nil)

    /// Wires the stream's `/status` object.
    public func setStreamReporter(_ report: @escaping @Sendable () -> StreamStatus) {
        streamReporter.withLock { $0 = report }
    }

    /// Gives the live connections per client address (set once the listener exists).
    private let addressReporter: Mutex<(@Sendable () -> [AddressConnections])?> = Mutex(nil)
    /// Gives the journal's storage state (set once the store exists).
    private let storageReporter: Mutex<(@Sendable () -> StorageStatus)?> = Mutex(nil)

    /// Wires the storage state `/status` shows (disk full, reserve, held frames).
    public func setStorageReporter(_ report: @escaping @Sendable () -> StorageStatus) {
        storageReporter.withLock { $0 = report }
    }

    /// Wires the per-address connection counts `/status` lists (the PROXY header's address behind
    /// a load balancer).
    public func setAddressReporter(_ report: @escaping @Sendable () -> [AddressConnections]) {
        addressReporter.withLock { $0 = report }
    }

    private struct RateSample {
        var at = ContinuousClock.now
        var records = 0
        var frames = 0
        var recordsPerSecond = 0.0
        var framesPerSecond = 0.0
    }

    private let rates = Mutex(RateSample())

    /// A state for a daemon starting now.
    public init(regions: [String], startedAt: Date = Date()) {
        self.regions = regions
        self.startedAt = startedAt
    }

    /// True between READY and the start of graceful shutdown.
    public var isServing: Bool {
        get { facts.withLock { $0.serving } }
        set { facts.withLock { $0.serving = newValue } }
    }

    /// Records a bound listener; returns how many distinct listeners are bound now.
    @discardableResult
    public func listenerBound(_ name: String, address: String) -> Int {
        facts.withLock {
            $0.listeners[name] = address
            return $0.listeners.count
        }
    }

    /// Records that a startup component (a listener, the store) is ready; returns how many are ready now.
    /// The daemon sends READY=1 when every component it waits for has reported.
    @discardableResult
    public func componentReady(_ name: String) -> Int {
        facts.withLock {
            $0.ready.insert(name)
            return $0.ready.count
        }
    }

    /// Wires the live connection count.
    public func setConnectionCounter(_ counter: @escaping @Sendable () -> Int) {
        connectionCount.withLock { $0 = counter }
    }

    /// Wires the store's per-region report and totals.
    public func setRegionReporter(
        _ report: @escaping @Sendable () -> [RegionStatus], totals: @escaping @Sendable () -> (records: Int, frames: Int)
    ) {
        regionReporter.withLock { $0 = report }
        totalsReporter.withLock { $0 = totals }
    }

    /// Takes a rate sample: records/s and frames/s over the interval since the previous sample.
    /// Called every few seconds by the daemon; `/status` reports the last interval's rates.
    public func sampleRates() {
        guard let totals = totalsReporter.withLock({ $0 })?() else { return }
        rates.withLock { sample in
            let now = ContinuousClock.now
            let elapsed = now - sample.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            guard seconds > 0 else { return }
            sample.recordsPerSecond = Double(totals.records - sample.records) / seconds
            sample.framesPerSecond = Double(totals.frames - sample.frames) / seconds
            sample.at = now
            sample.records = totals.records
            sample.frames = totals.frames
        }
    }

    /// The `/status` document.
    public func snapshot() -> DaemonStatus {
        let facts = self.facts.withLock { $0 }
        let connections = connectionCount.withLock { $0 }?() ?? 0
        let regionStates = regionReporter.withLock { $0 }?() ?? regions.map {
            RegionStatus(region: $0, state: "starting", queuedBytes: 0, recordsStored: 0, recordsDuplicate: 0,
                         recordsRejected: 0, eventsStored: 0, commits: 0, failedAttempts: 0)
        }
        let rates = self.rates.withLock { $0 }
        return DaemonStatus(
            version: HorgosServerInfo.version,
            serving: facts.serving,
            startedAt: startedAt,
            uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
            listeners: facts.listeners,
            connections: connections,
            regions: regionStates,
            framesPerSecond: (rates.framesPerSecond * 10).rounded() / 10,
            recordsPerSecond: (rates.recordsPerSecond * 10).rounded() / 10,
            degradedRegions: regionStates.filter { $0.state == "degraded" }.map(\.region),
            queuedBytes: regionStates.reduce(0) { $0 + $1.queuedBytes },
            clientAddresses: addressReporter.withLock { $0 }?() ?? [],
            storage: storageReporter.withLock { $0 }?(),
            stream: streamReporter.withLock { $0 }?())
    }

    /// One line for systemd's STATUS=.
    public func statusLine() -> String {
        let status = snapshot()
        var line = "\(status.serving ? "serving" : "not serving"); \(status.connections) connections; "
            + "\(Int(status.recordsPerSecond)) records/s; \(status.regions.count) regions"
        if status.storage?.diskFull == true { line += "; DISK FULL (acknowledging nothing)" }
        if !status.degradedRegions.isEmpty { line += "; degraded: " + status.degradedRegions.joined(separator: ",") }
        return line
    }
}

/// The `/status` JSON document.
public struct DaemonStatus: Encodable, Sendable, Hashable {
    /// Daemon version.
    public var version: String
    /// Whether the daemon accepts and serves connections.
    public var serving: Bool
    /// Start time (ISO 8601 in JSON).
    public var startedAt: Date
    /// Seconds since start.
    public var uptimeSeconds: Int
    /// Listener name to bound address.
    public var listeners: [String: String]
    /// Open telemetry connections.
    public var connections: Int
    /// Each region served: its writer's state, queue and counters.
    public var regions: [RegionStatus]
    /// Data frames committed per second over the last sampling interval (5 s).
    public var framesPerSecond: Double
    /// Records committed (stored or recognised as duplicates) per second over the last interval.
    public var recordsPerSecond: Double
    /// Regions whose writer is degraded (acknowledging nothing until it recovers).
    public var degradedRegions: [String]
    /// Bytes queued for all writers.
    public var queuedBytes: Int
    /// The client addresses with the most open connections (at most 20), as the limits count them.
    public var clientAddresses: [AddressConnections] = []
    /// The journal's storage state (nil before the store opened).
    public var storage: StorageStatus?
    /// The NATS JetStream stream (issue 20); absent without `stream.servers`.
    public var stream: StreamStatus?
}

/// The journal's side of the node's storage in `/status`: a full disk, the reserve, frames waiting.
public struct StorageStatus: Encodable, Sendable, Hashable {
    /// True while the journal's file system is full: nothing is acknowledged, frames wait.
    public var diskFull: Bool
    /// The error that started the disk-full state, and when (ISO 8601 in JSON).
    public var diskFullMessage: String?
    public var diskFullSince: Date?
    /// Bytes of the reserve held now (`journal.reserve_bytes`; 0 while released on a full disk).
    public var reserveBytes: Int
    /// Frames held before the journal (full disk, `journal.max_bytes` or a region's bound).
    public var heldFrames: Int
    /// Bytes and files of the journal.
    public var journalBytes: Int
    public var journalSegments: Int
    /// Set once a journal write or fdatasync failed (the node acknowledges nothing more).
    public var journalFailure: String?

    public init(
        diskFull: Bool, diskFullMessage: String? = nil, diskFullSince: Date? = nil, reserveBytes: Int,
        heldFrames: Int, journalBytes: Int, journalSegments: Int, journalFailure: String? = nil
    ) {
        self.diskFull = diskFull
        self.diskFullMessage = diskFullMessage
        self.diskFullSince = diskFullSince
        self.reserveBytes = reserveBytes
        self.heldFrames = heldFrames
        self.journalBytes = journalBytes
        self.journalSegments = journalSegments
        self.journalFailure = journalFailure
    }
}

/// The stream's part of `/status` (issue 20): the connection, the publisher's progress and counters.
/// Per-region publish and follow lag are in each `RegionStatus`.
public struct StreamStatus: Encodable, Sendable, Hashable {
    /// `connected`, `connecting`, `disconnected`.
    public var state: String
    /// The NATS server connected to, and its version.
    public var server: String?
    public var serverVersion: String?
    public var streamName: String
    public var node: String
    /// `disk`, `process` or `replicated`.
    public var durability: String
    /// Every journal entry at or below this LSN is on the stream.
    public var publishedLsn: UInt64
    /// Entries acknowledged by JetStream since start; of them, already on the stream; sent again.
    public var published: Int
    public var duplicates: Int
    public var resends: Int
    /// Publishes awaiting their ack, and (`replicated`) ACKs to units awaiting the stream, now.
    public var outstanding: Int
    public var heldAcks: Int
    public var followedRegions: [String]
    public var lastError: String?

    public init(
        state: String, server: String?, serverVersion: String?, streamName: String, node: String, durability: String,
        publishedLsn: UInt64, published: Int, duplicates: Int, resends: Int, outstanding: Int, heldAcks: Int,
        followedRegions: [String], lastError: String?
    ) {
        self.state = state
        self.server = server
        self.serverVersion = serverVersion
        self.streamName = streamName
        self.node = node
        self.durability = durability
        self.publishedLsn = publishedLsn
        self.published = published
        self.duplicates = duplicates
        self.resends = resends
        self.outstanding = outstanding
        self.heldAcks = heldAcks
        self.followedRegions = followedRegions
        self.lastError = lastError
    }
}
