import Foundation

/// The per-country shard store: one `RegionWriter` per configured region under one state directory.
///
/// This is what the daemon creates at start (`ShardStore(configuration:)`), routes submissions
/// through (`writer(for:)`), watches (`writers`) and stops at shutdown (`stop()`). Regions are
/// independent: a fault in one region's files degrades only that region's writer.
/// Readers (the CLI) do not need a `ShardStore`; they use `ShardReader` on the same directory.
///
/// Limits: writer threads run until `stop()`, which must be called before the store is dropped;
/// one process per state directory (a second writer on the same files would only see SQLITE_BUSY).
public final class ShardStore: Sendable {
    public let configuration: StoreConfiguration
    /// The writers by region.
    public let writers: [Region: RegionWriter]

    /// Creates the state directory and starts one writer thread per region. Files are opened on the
    /// writer threads; a region whose files cannot be opened starts `degraded` and keeps retrying.
    public init(configuration: StoreConfiguration) throws(StoreError) {
        SQLiteProcessSetup.ensure()
        try StoreFiles.createDirectory(configuration.stateDirectory)
        self.configuration = configuration
        var writers: [Region: RegionWriter] = [:]
        for region in Set(configuration.regions) {
            writers[region] = RegionWriter(region: region, configuration: configuration)
        }
        self.writers = writers
    }

    /// The writer of `region`; throws `.unknownRegion` for a market that is not configured.
    public func writer(for region: Region) throws(StoreError) -> RegionWriter {
        guard let writer = writers[region] else {
            throw StoreError(.unknownRegion, message: "\(region) is not a configured region", context: "route")
        }
        return writer
    }

    /// Stops every writer (in parallel): commit what is queued, checkpoint, close.
    public func stop(timeoutMs: Int = 30_000) {
        let all = Array(writers.values)
        DispatchQueue.concurrentPerform(iterations: all.count) { index in all[index].stop(timeoutMs: timeoutMs) }
    }

    /// Copies a region's registry and partitions into `destination/<CC>/` as consistent snapshots
    /// (`VACUUM INTO` on read-only connections) while the writer keeps committing.
    ///
    /// Each file is a consistent snapshot of itself; files are copied one after another, so the
    /// registry may be a few commits older or newer than a partition (the partitions are the truth).
    /// Returns the paths written. Existing files of the same names in `destination` are replaced.
    public static func backup(
        stateDirectory: String, region: Region, to destination: String
    ) throws(StoreError) -> [String] {
        var copied: [String] = []
        for file in ShardBackup.files(stateDirectory: stateDirectory, region: region) {
            _ = try ShardBackup.copy(stateDirectory: stateDirectory, region: region, file: file.name, to: destination)
            copied.append("\(StoreFiles.regionDirectory(destination, region))/\(file.name)")
        }
        return copied
    }

    /// Partition days of a region directory whose whole day is older than `retentionDays`.
    static func expiredPartitionDays(in directory: String, retentionDays: Int, nowMs: Int64) -> [UTCDay] {
        let firstKept = UTCDay(epochMs: nowMs).dayNumber - Int64(retentionDays)
        return StoreFiles.partitionDays(in: directory).filter { $0.dayNumber < firstKept }
    }

    /// Deletes a region's partitions older than `retentionDays` (with their -wal/-shm files) and
    /// returns the names removed; the registry and its vehicles stay. For `horgosctl` (a running
    /// writer does the same on its own every minute); `dryRun` only lists them.
    public static func pruneRetention(
        stateDirectory: String, region: Region, retentionDays: Int, nowMs: Int64 = StoreClock.systemMs(),
        dryRun: Bool = false
    ) throws(StoreError) -> [String] {
        let directory = StoreFiles.regionDirectory(stateDirectory, region)
        var removed: [String] = []
        for day in expiredPartitionDays(in: directory, retentionDays: retentionDays, nowMs: nowMs) {
            if !dryRun { try StoreFiles.deleteDatabase("\(directory)/\(day.partitionFileName)") }
            removed.append(day.partitionFileName)
        }
        return removed
    }
}
