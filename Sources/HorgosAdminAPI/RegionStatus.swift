import HorgosConfig
/// One region's writer as `/status` shows it: health, queue and counters since start.
///
/// Decoding is lenient (missing fields take their defaults), as for ``DaemonStatus``.
public struct RegionStatus: Codable, Sendable, Hashable {
    /// The region's ISO 3166-1 alpha-2 code.
    public var region: String
    /// `starting`, `ok`, `degraded` or `stopped`.
    public var state: String
    /// The fault class while degraded (`disk_full`, `io_error`, `locked`, `corrupt`, ...).
    public var fault: String?
    /// The fault's message while degraded.
    public var message: String?
    /// Bytes queued for the writer and not yet committed.
    public var queuedBytes: Int
    /// Records stored since start.
    public var recordsStored: Int
    /// Records recognised as duplicates since start.
    public var recordsDuplicate: Int
    /// Records refused by the time horizon since start.
    public var recordsRejected: Int
    /// Events stored since start.
    public var eventsStored: Int
    /// Apply transactions committed since start.
    public var commits: Int
    /// Failed apply attempts since start.
    public var failedAttempts: Int
    /// The last journal LSN applied to the region's shards.
    public var appliedLsn: UInt64 = 0
    /// Entries acknowledged and not yet applied (the apply lag in journal entries).
    public var applyLagEntries: Int = 0
    /// Seconds since the arrival of the oldest unapplied entry (0 when none).
    public var applyLagSeconds: Double = 0
    /// Damaged files moved aside since start.
    public var quarantinedFiles: Int = 0
    /// Quarantined files (names in the region directory) no operator has acknowledged yet
    /// (`horgosctl shards acknowledge CC`); `/health/CC` reports them.
    public var quarantineUnacknowledged: [String] = []
    /// Wall-clock time (ms since the epoch) of the last periodic integrity check, and its CPU seconds.
    public var lastIntegrityCheckMs: Int64?
    /// CPU seconds the last periodic integrity check took.
    public var lastIntegrityCheckSeconds: Double = 0
    /// Issue 20 (absent without `stream.servers`): the region's last journal LSN on the stream.
    public var publishedLsn: UInt64?
    /// Entries not yet acknowledged by JetStream.
    public var publishLagEntries: Int?
    /// Their bytes.
    public var publishLagBytes: Int?
    /// Age of the oldest of them, in seconds.
    public var publishLagSeconds: Double?
    /// True while the region's frames wait because its unpublished bytes reached `stream.max_lag_bytes`.
    public var publishHeld: Bool?
    /// Followed regions (`follow.regions`): `connecting`, `catching_up`, `following` or `failed`.
    public var followState: String?
    /// The entries the stream holds for this node that are not yet in its journal.
    public var followLagEntries: Int?
    /// The region's policy (`policy.<CC>.*` over the defaults): retention, stream, backup, positions.
    public var policy: RegionPolicy?
    /// Erasure tombstones applied since start.
    public var erasures: Int = 0

    /// A status from its parts.
    public init(region: String, state: String, fault: String? = nil, message: String? = nil, queuedBytes: Int,
                recordsStored: Int, recordsDuplicate: Int, recordsRejected: Int, eventsStored: Int, commits: Int,
                failedAttempts: Int) {
        self.region = region
        self.state = state
        self.fault = fault
        self.message = message
        self.queuedBytes = queuedBytes
        self.recordsStored = recordsStored
        self.recordsDuplicate = recordsDuplicate
        self.recordsRejected = recordsRejected
        self.eventsStored = eventsStored
        self.commits = commits
        self.failedAttempts = failedAttempts
    }

    private enum CodingKeys: String, CodingKey {
        case region, state, fault, message, queuedBytes, recordsStored, recordsDuplicate, recordsRejected
        case eventsStored, commits, failedAttempts, appliedLsn, applyLagEntries, applyLagSeconds, quarantinedFiles
        case policy, erasures, quarantineUnacknowledged, lastIntegrityCheckMs, lastIntegrityCheckSeconds
        case publishedLsn, publishLagEntries, publishLagBytes, publishLagSeconds, publishHeld, followState
        case followLagEntries
    }

    /// Reads a region of this or another version's document.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            region: try c.decodeIfPresent(String.self, forKey: .region) ?? "?",
            state: try c.decodeIfPresent(String.self, forKey: .state) ?? "unknown",
            fault: try c.decodeIfPresent(String.self, forKey: .fault),
            message: try c.decodeIfPresent(String.self, forKey: .message),
            queuedBytes: try c.decodeIfPresent(Int.self, forKey: .queuedBytes) ?? 0,
            recordsStored: try c.decodeIfPresent(Int.self, forKey: .recordsStored) ?? 0,
            recordsDuplicate: try c.decodeIfPresent(Int.self, forKey: .recordsDuplicate) ?? 0,
            recordsRejected: try c.decodeIfPresent(Int.self, forKey: .recordsRejected) ?? 0,
            eventsStored: try c.decodeIfPresent(Int.self, forKey: .eventsStored) ?? 0,
            commits: try c.decodeIfPresent(Int.self, forKey: .commits) ?? 0,
            failedAttempts: try c.decodeIfPresent(Int.self, forKey: .failedAttempts) ?? 0)
        appliedLsn = try c.decodeIfPresent(UInt64.self, forKey: .appliedLsn) ?? 0
        applyLagEntries = try c.decodeIfPresent(Int.self, forKey: .applyLagEntries) ?? 0
        applyLagSeconds = try c.decodeIfPresent(Double.self, forKey: .applyLagSeconds) ?? 0
        quarantinedFiles = try c.decodeIfPresent(Int.self, forKey: .quarantinedFiles) ?? 0
        policy = try c.decodeIfPresent(RegionPolicy.self, forKey: .policy)
        erasures = try c.decodeIfPresent(Int.self, forKey: .erasures) ?? 0
        quarantineUnacknowledged =
            try c.decodeIfPresent([String].self, forKey: .quarantineUnacknowledged) ?? []
        lastIntegrityCheckMs = try c.decodeIfPresent(Int64.self, forKey: .lastIntegrityCheckMs)
        lastIntegrityCheckSeconds = try c.decodeIfPresent(Double.self, forKey: .lastIntegrityCheckSeconds) ?? 0
        publishedLsn = try c.decodeIfPresent(UInt64.self, forKey: .publishedLsn)
        publishLagEntries = try c.decodeIfPresent(Int.self, forKey: .publishLagEntries)
        publishLagBytes = try c.decodeIfPresent(Int.self, forKey: .publishLagBytes)
        publishLagSeconds = try c.decodeIfPresent(Double.self, forKey: .publishLagSeconds)
        publishHeld = try c.decodeIfPresent(Bool.self, forKey: .publishHeld)
        followState = try c.decodeIfPresent(String.self, forKey: .followState)
        followLagEntries = try c.decodeIfPresent(Int.self, forKey: .followLagEntries)
    }
}
