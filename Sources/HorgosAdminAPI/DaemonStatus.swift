import Foundation

/// The admin endpoint's `/status` document: what `horgosd` reports of itself and what `horgosctl status`
/// decodes (one type on both sides, so a field renamed in one is a compile error in the other).
///
/// Decoding is lenient on purpose: a field this version does not know is ignored and a field an older
/// daemon did not send takes its default, so `horgosctl status --node A --node B` reads a fleet whose
/// nodes run different versions during an upgrade.
public struct DaemonStatus: Codable, Sendable, Hashable {
    /// Daemon version.
    public var version: String
    /// Whether the daemon accepts and serves connections.
    public var serving: Bool
    /// Start time (ISO 8601 in JSON).
    public var startedAt: Date
    /// Seconds since start.
    public var uptimeSeconds: Int
    /// Listener name to bound address (`telemetry`, `gbt32960`, `admin`).
    public var listeners: [String: String]
    /// Open connections of every listener (native and GB/T 32960), the figure `limits.max_connections` caps.
    public var connections: Int
    /// Open connections per protocol (`native`, `gbt32960`).
    public var connectionsByProtocol: [String: Int]
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
    /// Bytes held for clients (partial frames, pinned receive buffers) against `limits.max_buffered_bytes`.
    public var bufferedBytes: Int
    /// The client addresses with the most open connections (at most 20), as the limits count them.
    public var clientAddresses: [AddressConnections]
    /// The journal's storage state (nil before the store opened).
    public var storage: StorageStatus?
    /// The NATS JetStream stream (issue 20); absent without `stream.servers`.
    public var stream: StreamStatus?

    /// A document from its parts; the defaults are those of a daemon that has not served yet.
    public init(
        version: String, serving: Bool, startedAt: Date, uptimeSeconds: Int, listeners: [String: String] = [:],
        connections: Int = 0, connectionsByProtocol: [String: Int] = [:], regions: [RegionStatus] = [],
        framesPerSecond: Double = 0, recordsPerSecond: Double = 0, degradedRegions: [String] = [],
        queuedBytes: Int = 0, bufferedBytes: Int = 0, clientAddresses: [AddressConnections] = [],
        storage: StorageStatus? = nil, stream: StreamStatus? = nil
    ) {
        self.version = version
        self.serving = serving
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.listeners = listeners
        self.connections = connections
        self.connectionsByProtocol = connectionsByProtocol
        self.regions = regions
        self.framesPerSecond = framesPerSecond
        self.recordsPerSecond = recordsPerSecond
        self.degradedRegions = degradedRegions
        self.queuedBytes = queuedBytes
        self.bufferedBytes = bufferedBytes
        self.clientAddresses = clientAddresses
        self.storage = storage
        self.stream = stream
    }

    private enum CodingKeys: String, CodingKey {
        case version, serving, startedAt, uptimeSeconds, listeners, connections, connectionsByProtocol, regions
        case framesPerSecond, recordsPerSecond, degradedRegions, queuedBytes, bufferedBytes, clientAddresses
        case storage, stream
    }

    /// Reads a document of this or another version (missing fields take their defaults).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            version: try c.decodeIfPresent(String.self, forKey: .version) ?? "unknown",
            serving: try c.decodeIfPresent(Bool.self, forKey: .serving) ?? false,
            startedAt: try c.decodeIfPresent(Date.self, forKey: .startedAt) ?? Date(timeIntervalSince1970: 0),
            uptimeSeconds: try c.decodeIfPresent(Int.self, forKey: .uptimeSeconds) ?? 0,
            listeners: try c.decodeIfPresent([String: String].self, forKey: .listeners) ?? [:],
            connections: try c.decodeIfPresent(Int.self, forKey: .connections) ?? 0,
            connectionsByProtocol: try c.decodeIfPresent([String: Int].self, forKey: .connectionsByProtocol) ?? [:],
            regions: try c.decodeIfPresent([RegionStatus].self, forKey: .regions) ?? [],
            framesPerSecond: try c.decodeIfPresent(Double.self, forKey: .framesPerSecond) ?? 0,
            recordsPerSecond: try c.decodeIfPresent(Double.self, forKey: .recordsPerSecond) ?? 0,
            degradedRegions: try c.decodeIfPresent([String].self, forKey: .degradedRegions) ?? [],
            queuedBytes: try c.decodeIfPresent(Int.self, forKey: .queuedBytes) ?? 0,
            bufferedBytes: try c.decodeIfPresent(Int.self, forKey: .bufferedBytes) ?? 0,
            clientAddresses: try c.decodeIfPresent([AddressConnections].self, forKey: .clientAddresses) ?? [],
            storage: try c.decodeIfPresent(StorageStatus.self, forKey: .storage),
            stream: try c.decodeIfPresent(StreamStatus.self, forKey: .stream))
    }

    /// The coder both sides use: ISO 8601 dates, sorted keys (stable output for scripts and tests).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The decoder matching ``encoder()``.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// One client address and its live connections, as `/status` lists them.
public struct AddressConnections: Codable, Sendable, Hashable {
    /// The client's IP address (from the PROXY header behind a balancer, else the TCP peer).
    public var address: String
    /// Its open connections, every listener together.
    public var connections: Int

    /// An entry from its parts.
    public init(address: String, connections: Int) {
        self.address = address
        self.connections = connections
    }
}

/// The journal's side of the node's storage in `/status`: a full disk, the reserve, frames waiting.
public struct StorageStatus: Codable, Sendable, Hashable {
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
public struct StreamStatus: Codable, Sendable, Hashable {
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
