import Foundation
import HorgosWire
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The per-country shard store: one ingest journal for every region, the region handles
/// (`RegionWriter`) submissions go through, and the applier threads that write acknowledged journal
/// entries into the regions' shards.
///
/// This is what the daemon creates at start (`ShardStore(configuration:)`), routes submissions
/// through (`writer(for:)`), watches (`writers`, `journalStatistics`) and stops at shutdown (`stop()`).
/// At start the journal is read back and every region replays the entries its shards have not applied
/// (idempotent). Regions are independent: a fault in one region's files degrades only that region's
/// applier; its entries wait in the journal. Readers (the CLI) use `ShardReader` on the same directory.
///
/// Limits: threads run until `stop()`, which must be called before the store is dropped; one process
/// per state directory (a second writer on the same files would only see SQLITE_BUSY).
public final class ShardStore: Sendable {
    public let configuration: StoreConfiguration
    /// The regions by code.
    public let writers: [Region: RegionWriter]
    let journal: Journal
    private let pool: ApplierPool
    private let checker: IntegrityChecker
    private let stopped = Mutex(false)

    /// Opens the journal (replaying it: a torn tail is cut and logged, damage in the middle throws
    /// `.journalCorrupt`), then starts the journal writer and the applier threads. Shard files are
    /// opened on the applier threads; a region whose files cannot be opened starts `degraded` and
    /// keeps retrying.
    public init(configuration: StoreConfiguration) throws(StoreError) {
        SQLiteProcessSetup.ensure()
        try StoreFiles.createDirectory(configuration.stateDirectory)
        self.configuration = configuration
        let regions = Array(Set(configuration.regions))
        var applied: [Region: UInt64] = [:]
        for region in regions {
            applied[region] = Self.appliedLSN(stateDirectory: configuration.stateDirectory, region: region)
        }
        let journal = try Journal(configuration: configuration, appliedLSNs: applied)
        self.journal = journal
        var writers: [Region: RegionWriter] = [:]
        var appliers: [RegionApplier] = []
        for region in regions {
            let writer = RegionWriter(region: region, configuration: configuration, journal: journal)
            writers[region] = writer
            appliers.append(
                RegionApplier(writer: writer, configuration: configuration, recovered: journal.recovered[region] ?? []))
        }
        for (region, entries) in journal.recovered where writers[region] == nil {
            configuration.log(
                .warning,
                "journal: \(entries.count) entries of \(region), which is no longer configured, are not applied "
                    + "(they stay in the journal until it is retired; configure the region again to apply them)")
        }
        self.writers = writers
        journal.attach(regions: writers)
        let pool = ApplierPool(appliers: appliers, count: configuration.appliers, journal: journal)
        self.pool = pool
        journal.start { pool.notify($0) }
        checker = IntegrityChecker(writers: Array(writers.values), configuration: configuration) { pool.notify($0) }
        for writer in writers.values {
            writer.stopStore.withLock { $0 = { [weak self] timeoutMs in self?.stop(timeoutMs: timeoutMs) } }
        }
    }

    /// The applied LSN a region's registry records (0 when it has none: a release before the journal).
    static func appliedLSN(stateDirectory: String, region: Region) -> UInt64 {
        let path = "\(StoreFiles.regionDirectory(stateDirectory, region))/\(StoreFiles.registryFileName)"
        guard StoreFiles.exists(path) else { return 0 }
        do throws(StoreError) {
            let db = try SQLiteConnection(path: path, readOnly: true)
            guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'meta'") == 1 else { return 0 }
            return UInt64(try db.prepare("SELECT value FROM meta WHERE key = 'applied_lsn'").firstText() ?? "0") ?? 0
        } catch {
            return 0
        }
    }

    /// The writer of `region`; throws `.unknownRegion` for a market that is not configured.
    public func writer(for region: Region) throws(StoreError) -> RegionWriter {
        guard let writer = writers[region] else {
            throw StoreError(.unknownRegion, message: "\(region) is not a configured region", context: "route")
        }
        return writer
    }

    /// The journal's counters (rounds, fdatasyncs, bytes, segments, durable LSN, held frames).
    public var journalStatistics: JournalStatistics { journal.statistics }

    /// A reader of the durable journal entries after `lsn` (issue 20's publisher; see `JournalReader`).
    public func journalReader(after lsn: UInt64) -> JournalReader { JournalReader(journal: journal, after: lsn) }

    /// Wakes the journal writer so held frames are admitted again (a retention hold made room).
    public func wakeJournal() { journal.wake() }

    /// Deletes the journal segments every region has applied and every hold has released (a hold that
    /// moved calls it; the appliers call it after each durability round).
    public func retireJournal() { journal.retire() }

    /// Stops the journal (writes and acknowledges what is queued), then the appliers (apply what is
    /// acknowledged, checkpoint, close), and records the regions' durable LSNs.
    public func stop(timeoutMs: Int = 30_000) {
        let first = stopped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let deadline = StoreClock.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        checker.stop()
        journal.stop(timeoutMs: timeoutMs)
        pool.stop(deadlineNs: deadline)
        journal.retire()
        journal.releaseLock()
    }

    /// Test support: waits until every entry acknowledged so far is applied to the shards and counted in
    /// the regions' statistics (true), or the timeout passed (false).
    public func waitUntilApplied(timeoutMs: Int = 20_000) async -> Bool {
        let deadline = StoreClock.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        while StoreClock.monotonicNs() < deadline {
            if writers.values.allSatisfy({ $0.statistics.unappliedEntries == 0 }) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
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
