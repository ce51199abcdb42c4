import HorgosAdminAPI
import HorgosConfig
import HorgosStore
import Prometheus
import Synchronization

/// Reads the store's writers for `/status`, the STATUS= line and `/metrics`.
///
/// The writers keep their own counters and commit-latency buckets (no per-commit metric calls on the
/// writer threads); this type turns a snapshot of them into JSON fields and Prometheus text when
/// asked, so a scrape costs one lock per region.
public struct RegionReport: Sendable {
    let store: ShardStore
    /// The stream's figures of a region (issue 20); nil without a stream.
    public var streamStatus: @Sendable (String) -> RegionStreamStatus? = { _ in nil }
    /// Each served region's effective policy, shown in its status (constant while the daemon runs).
    let policies: [String: RegionPolicy]

    public init(store: ShardStore, policies: [String: RegionPolicy] = [:]) {
        self.store = store
        self.policies = policies
    }

    /// One moment of every region (sorted by code) and of the journal: each region's state, counters,
    /// applied LSN and apply lag are read under one lock, so they always belong together.
    public struct Snapshot: Sendable {
        public var regions: [(code: String, writer: RegionWriterSnapshot)]
        public var journal: JournalStatistics
    }

    /// Takes a snapshot; render every view of one request (a `/status`, a scrape) from the same one.
    public func snapshot() -> Snapshot {
        Snapshot(
            regions: store.writers.sorted { $0.key < $1.key }.map { ($0.key.code, $0.value.snapshot) },
            journal: store.journalStatistics)
    }

    /// Every region's status, sorted by code.
    public func regions() -> [RegionStatus] { regions(snapshot()) }

    /// Every region's status in `snapshot`. While the journal's file system is full every region is
    /// `degraded` with fault `disk_full` (nothing of any region is acknowledged then).
    public func regions(_ snapshot: Snapshot) -> [RegionStatus] {
        let diskFull = snapshot.journal.diskFull
        return snapshot.regions.map { code, writer in
            let stats = writer.statistics
            var status = RegionStatus(
                region: code, state: "ok", fault: nil, message: nil, queuedBytes: stats.unappliedBytes,
                recordsStored: stats.recordsStored, recordsDuplicate: stats.recordsDuplicate,
                recordsRejected: stats.recordsRejected, eventsStored: stats.eventsStored, commits: stats.commits,
                failedAttempts: stats.failedAttempts)
            status.appliedLsn = stats.appliedLSN
            status.applyLagEntries = stats.unappliedEntries
            status.applyLagSeconds = Self.lagSeconds(stats)
            status.quarantinedFiles = stats.quarantinedFiles
            status.quarantineUnacknowledged = stats.quarantineUnacknowledged
            status.lastIntegrityCheckMs = stats.lastIntegrityCheckMs
            status.lastIntegrityCheckSeconds = stats.lastIntegrityCheckSeconds
            status.erasures = stats.erasures
            status.policy = policies[code]
            switch writer.state {
            case .starting: status.state = "starting"
            case .ok: status.state = "ok"
            case .stopped: status.state = "stopped"
            case .degraded(let fault, let message):
                status.state = "degraded"
                status.fault = fault.rawValue
                status.message = message
            }
            if let diskFull, status.state != "stopped" {
                status.state = "degraded"
                status.fault = StoreFault.diskFull.rawValue
                status.message = "journal: \(diskFull)"
            }
            if let stream = streamStatus(code) { stream.apply(to: &status) }
            return status
        }
    }

    /// Seconds from the oldest unapplied entry's arrival to now (0 when everything is applied).
    static func lagSeconds(_ stats: RegionWriterStatistics) -> Double {
        guard let oldest = stats.oldestUnappliedArrivalMs else { return 0 }
        return max(0, Double(StoreClock.systemMs() - oldest) / 1000)
    }

    /// Totals over all regions: records stored and data frames committed.
    public func totals() -> (records: Int, frames: Int) {
        store.writers.values.reduce((0, 0)) { sum, writer in
            let stats = writer.statistics
            return (sum.0 + stats.recordsStored + stats.recordsDuplicate, sum.1 + stats.submissionsCommitted)
        }
    }

    /// Everything `/metrics` adds for the regions and the journal, from one snapshot: the gauges and
    /// counters go into `publisher`'s registry, the rest comes back as Prometheus text.
    public func metrics(publishingInto publisher: RegionMetricsPublisher) -> String {
        let now = snapshot()
        publish(now, into: publisher)
        return prometheusText(now)
    }

    /// Publishes the per-region gauges and counters into `registry` (swift-prometheus), read from
    /// the writers now: call it before each `/metrics` rendering (``RegionMetricsPublisher``).
    public func publish(into publisher: RegionMetricsPublisher) { publish(snapshot(), into: publisher) }

    func publish(_ snapshot: Snapshot, into publisher: RegionMetricsPublisher) {
        let diskFull = snapshot.journal.diskFull != nil
        publisher.publish(snapshot.regions.map { code, writer in
            var fault: String? = if case .degraded(let fault, _) = writer.state { fault.rawValue } else { nil }
            if diskFull { fault = StoreFault.diskFull.rawValue }
            return RegionMetricsPublisher.Snapshot(
                region: code, statistics: writer.statistics, queuedBytes: writer.statistics.unappliedBytes,
                fault: fault)
        })
    }

    /// The apply-lag gauges, the journal's figures and the commit-latency histogram in Prometheus text
    /// format (appended to `/metrics`).
    ///
    /// Still text: the histogram's buckets are counted by the journal and appliers on their own threads
    /// (no metrics call per round); swift-prometheus's histogram only takes single observations, so
    /// replaying the bucket counts into it would make its `_sum` wrong. The queue, degraded state and
    /// per-region counters go through swift-prometheus (``publish(into:)``).
    public func prometheusText() -> String { prometheusText(snapshot()) }

    func prometheusText(_ snapshot: Snapshot) -> String {
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let snapshots = snapshot.regions.map { ($0.code, $0.writer.statistics) }
        let applyGauges: [(String, String, String, (RegionWriterStatistics) -> String)] = [
            (
                "horgos_region_apply_lag_entries", "gauge",
                "Journal entries acknowledged and not yet applied to the region's shards.",
                { "\($0.unappliedEntries)" }
            ),
            (
                "horgos_region_apply_lag_seconds", "gauge", "Age of the region's oldest unapplied journal entry.",
                { "\(Self.lagSeconds($0))" }
            ),
            (
                "horgos_region_applied_lsn", "gauge", "Last journal LSN applied to the region's shards.",
                { "\($0.appliedLSN)" }
            ),
            (
                "horgos_region_quarantined_files_total", "counter", "Damaged shard files moved aside.",
                { "\($0.quarantinedFiles)" }
            ),
            (
                "horgos_region_integrity_checks_total", "counter",
                "Periodic quick_check runs of the region's current day file and registry.", { "\($0.integrityChecks)" }
            ),
            (
                "horgos_region_integrity_check_seconds", "gauge", "CPU seconds of the region's last periodic check.",
                { "\($0.lastIntegrityCheckSeconds)" }
            ),
        ]
        for (name, type, help, value) in applyGauges {
            header(name, type, help)
            for (region, stats) in snapshots { out += "\(name){region=\"\(region)\"} \(value(stats))\n" }
        }
        header(
            "horgos_region_quarantine_unacknowledged", "gauge",
            "Quarantined shard files of the region no operator has acknowledged (horgosctl shards acknowledge).")
        for (region, stats) in snapshots {
            out += "horgos_region_quarantine_unacknowledged{region=\"\(region)\"} "
                + "\(stats.quarantineUnacknowledged.count)\n"
        }
        let journal = snapshot.journal
        let journalValues: [(String, String, String, String)] = [
            ("horgos_journal_rounds_total", "counter", "Journal write rounds (group commits).", "\(journal.rounds)"),
            ("horgos_journal_fdatasyncs_total", "counter", "Journal fdatasync calls.", "\(journal.fdatasyncs)"),
            ("horgos_journal_entries_total", "counter", "Journal entries written.", "\(journal.entries)"),
            (
                "horgos_journal_written_bytes_total", "counter", "Bytes written to the journal.",
                "\(journal.bytesWritten)"
            ),
            ("horgos_journal_disk_bytes", "gauge", "Bytes of the journal's segment files.", "\(journal.diskBytes)"),
            ("horgos_journal_segments", "gauge", "Journal segment files.", "\(journal.segments)"),
            (
                "horgos_journal_durable_lsn", "gauge", "LSN of the last acknowledged journal entry.",
                "\(journal.durableLSN)"
            ),
            (
                "horgos_journal_held_frames", "gauge", "Frames held back by journal.max_bytes or a region's bound.",
                "\(journal.heldSubmissions)"
            ),
            (
                "horgos_journal_failed", "gauge", "1 once a journal write or fdatasync failed.",
                journal.failure == nil ? "0" : "1"
            ),
            (
                "horgos_disk_full", "gauge",
                "1 while the journal's file system is full: nothing is acknowledged, frames wait.",
                journal.diskFull == nil ? "0" : "1"
            ),
            (
                "horgos_disk_full_episodes_total", "counter", "Times the journal's file system filled up.",
                "\(journal.diskFullEpisodes)"
            ),
            (
                "horgos_journal_reserve_bytes", "gauge",
                "Bytes of the disk reserve held now (0 while released on a full disk).", "\(journal.reserveBytes)"
            ),
        ]
        for (name, type, help, value) in journalValues {
            header(name, type, help)
            out += "\(name) \(value)\n"
        }
        header(
            "horgos_commit_latency_seconds", "histogram",
            "From a frame's submission to the journal round holding it being durable (what its ACK waits for).")
        let bounds = RegionWriterStatistics.commitLatencyBucketsUs
        for (region, stats) in snapshots {
            PrometheusHistogramText.appendSeries(
                "horgos_commit_latency_seconds", labels: "region=\"\(region)\"", upperBounds: bounds,
                counts: stats.commitLatencyCounts, sum: stats.commitLatencySumUs, unitsPerSecond: 1e6, to: &out)
        }
        return out
    }
}

/// The region writers' gauges and counters in the swift-prometheus registry `/metrics` renders.
///
/// The writers keep cumulative counters of their own (no metrics call on the writer threads); at
/// each scrape this type sets the gauges and advances each Prometheus counter by what the writer
/// counted since the previous scrape, so the exported counters are exact and monotonic.
public final class RegionMetricsPublisher: Sendable {
    /// One region's figures at scrape time.
    public struct Snapshot: Sendable {
        public var region: String
        public var statistics: RegionWriterStatistics
        public var queuedBytes: Int
        /// The fault class while degraded; nil while not.
        public var fault: String?

        public init(region: String, statistics: RegionWriterStatistics, queuedBytes: Int, fault: String?) {
            self.region = region
            self.statistics = statistics
            self.queuedBytes = queuedBytes
            self.fault = fault
        }
    }

    /// Name, help and reading of each per-region counter.
    private static let counters: [(String, String, @Sendable (RegionWriterStatistics) -> Int)] = [
        ("records_stored", "Records newly stored.", { $0.recordsStored }),
        ("duplicates", "Records already stored (resends), acknowledged.", { $0.recordsDuplicate }),
        ("records_rejected", "Records outside the time horizon, not stored.", { $0.recordsRejected }),
        ("events_stored", "EVENT frames stored.", { $0.eventsStored }),
        ("commits", "Apply transactions committed into the shards.", { $0.commits }),
        ("commit_failures", "Transactions that failed and were retried.", { $0.failedAttempts }),
    ]

    private let registry: PrometheusCollectorRegistry
    /// Per region: the counter values already published, and the fault labels seen.
    private let published = Mutex<[String: (counts: [Int], faults: Set<String>)]>([:])

    /// A publisher into `registry`.
    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    private func descriptor(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "horgos", subsystem: "region", metricName: name, unitName: unit, helpText: help)
    }

    /// Sets the gauges and advances the counters to `snapshots`.
    public func publish(_ snapshots: [Snapshot]) {
        let queue = descriptor(
            "queue", unit: "bytes", help: "Journal bytes of the region acknowledged and not yet applied to its shards.")
        let degraded = descriptor(
            "degraded", unit: "", help: "1 while the region's applier is degraded (its frames wait in the journal).")
        published.withLock { published in
            for snapshot in snapshots {
                let region = snapshot.region
                registry.makeGauge(descriptor: queue, labels: [("region", region)]).set(Int64(snapshot.queuedBytes))
                var entry = published[region] ?? (Array(repeating: 0, count: Self.counters.count), [""])
                if let fault = snapshot.fault { entry.faults.insert(fault) }
                for fault in entry.faults {
                    var value: Int64 = 0
                    if let current = snapshot.fault, current == fault { value = 1 }
                    registry.makeGauge(descriptor: degraded, labels: [("region", region), ("fault", fault)]).set(value)
                }
                for (index, (name, help, read)) in Self.counters.enumerated() {
                    let counter = registry.makeCounter(
                        descriptor: descriptor(name, unit: "total", help: help), labels: [("region", region)])
                    let now = read(snapshot.statistics)
                    if now > entry.counts[index] { counter.increment(by: Int64(now - entry.counts[index])) }
                    entry.counts[index] = max(now, entry.counts[index])
                }
                published[region] = entry
            }
        }
    }
}

/// One region's stream figures (issue 20), merged into its `RegionStatus` by `RegionReport`.
public struct RegionStreamStatus: Sendable, Hashable {
    public var publishedLSN: UInt64
    public var publishLagEntries: Int
    public var publishLagBytes: Int
    public var publishLagSeconds: Double
    public var publishHeld: Bool
    /// nil when the node does not follow the region.
    public var followState: String?
    public var followLagEntries: Int?
    /// False while a followed region has not caught up with the stream: the region then reports
    /// `catching_up` and `/health/CC` answers 503 (HAProxy keeps its vehicles on the other node).
    public var caughtUp: Bool

    public init(
        publishedLSN: UInt64, publishLagEntries: Int, publishLagBytes: Int, publishLagSeconds: Double,
        publishHeld: Bool, followState: String? = nil, followLagEntries: Int? = nil, caughtUp: Bool = true
    ) {
        self.publishedLSN = publishedLSN
        self.publishLagEntries = publishLagEntries
        self.publishLagBytes = publishLagBytes
        self.publishLagSeconds = publishLagSeconds
        self.publishHeld = publishHeld
        self.followState = followState
        self.followLagEntries = followLagEntries
        self.caughtUp = caughtUp
    }

    func apply(to status: inout RegionStatus) {
        status.publishedLsn = publishedLSN
        status.publishLagEntries = publishLagEntries
        status.publishLagBytes = publishLagBytes
        status.publishLagSeconds = (publishLagSeconds * 10).rounded() / 10
        status.publishHeld = publishHeld
        status.followState = followState
        status.followLagEntries = followLagEntries
        if !caughtUp && status.state == "ok" { status.state = "catching_up" }
    }
}
