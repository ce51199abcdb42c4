import HorgosWire

/// When a day partition may be deleted by a process other than the writer (`horgosctl prune`).
///
/// A partition is expired when its day is older than `retentionDays` (the writer's own rule: days
/// before `today - retentionDays` go) AND its whole day ended more than the late horizon plus a
/// safety margin ago. The writer never opens or writes a partition outside its horizon (records that
/// old are rejected), so such a file is safe to delete while the daemon runs. The margin (default one
/// day) covers the writer's once-a-minute maintenance that closes partitions leaving the horizon and
/// small clock differences between the two processes. Limits: whole files only, never the registry.
public struct RetentionPolicy: Sendable, Hashable {
    /// Days of partitions kept (`store.retention_days`).
    public var retentionDays: Int
    /// How late the writer still accepts records (`store.late_horizon_days`), in ms.
    public var lateHorizonMs: Int64
    /// Extra age beyond the late horizon before a file is touched (default one day).
    public var safetyMarginMs: Int64

    /// A policy from its parts.
    public init(retentionDays: Int, lateHorizonMs: Int64, safetyMarginMs: Int64 = UTCDay.millisecondsPerDay) {
        self.retentionDays = retentionDays
        self.lateHorizonMs = lateHorizonMs
        self.safetyMarginMs = safetyMarginMs
    }

    /// Whether the partition of `day` may be deleted at `nowMs`.
    public func isExpired(_ day: UTCDay, nowMs: Int64) -> Bool {
        let firstKept = UTCDay(epochMs: nowMs).dayNumber - Int64(retentionDays)
        return day.dayNumber < firstKept && day.endMs <= nowMs - lateHorizonMs - safetyMarginMs
    }
}

/// A partition file that retention deleted (or would delete, in a dry run).
public struct PrunedPartition: Sendable, Hashable, Codable {
    /// The region code.
    public var region: String
    /// The file name (`telemetry-YYYY-MM-DD.sqlite`).
    public var name: String
    /// The partition's UTC day, `YYYY-MM-DD`.
    public var day: String
    /// Database plus WAL bytes freed.
    public var bytes: Int64
}

extension ShardReader {
    /// Deletes the region's partition files that `policy` says are expired at `nowMs` (each with its
    /// `-wal` and `-shm`), oldest first, and returns what it deleted; `dryRun` only lists them.
    ///
    /// Safe while the daemon runs (see `RetentionPolicy`); never touches the registry or any file that
    /// is not a partition. Limits: needs write permission on the region directory.
    public func pruneExpiredPartitions(
        policy: RetentionPolicy, nowMs: Int64, dryRun: Bool = false
    ) throws(StoreError) -> [PrunedPartition] {
        var pruned: [PrunedPartition] = []
        for day in partitionDays() where policy.isExpired(day, nowMs: nowMs) {
            let path = "\(directory)/\(day.partitionFileName)"
            let bytes = StoreFiles.size(path) + StoreFiles.size(path + "-wal")
            if !dryRun { try StoreFiles.deleteDatabase(path) }
            pruned.append(
                PrunedPartition(region: region.code, name: day.partitionFileName, day: day.description, bytes: bytes))
        }
        return pruned
    }
}
