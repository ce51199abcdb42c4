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

    /// A document from its parts; the defaults are those of a daemon that has not served yet.
    public init(
        version: String, serving: Bool, startedAt: Date, uptimeSeconds: Int, listeners: [String: String] = [:],
        connections: Int = 0, connectionsByProtocol: [String: Int] = [:], regions: [RegionStatus] = [],
        framesPerSecond: Double = 0, recordsPerSecond: Double = 0, degradedRegions: [String] = [],
        queuedBytes: Int = 0, bufferedBytes: Int = 0, clientAddresses: [AddressConnections] = []
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
    }

    private enum CodingKeys: String, CodingKey {
        case version, serving, startedAt, uptimeSeconds, listeners, connections, connectionsByProtocol, regions
        case framesPerSecond, recordsPerSecond, degradedRegions, queuedBytes, bufferedBytes, clientAddresses
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
            clientAddresses: try c.decodeIfPresent([AddressConnections].self, forKey: .clientAddresses) ?? [])
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
