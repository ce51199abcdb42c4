import HorgosStore

/// One region's writer as `/status` shows it: health, queue and counters since start.
public struct RegionStatus: Encodable, Sendable, Hashable {
    public var region: String
    /// `starting`, `ok`, `degraded` or `stopped`.
    public var state: String
    /// The fault class while degraded (`disk_full`, `io_error`, `locked`, `corrupt`, ...).
    public var fault: String?
    public var message: String?
    /// Bytes queued for the writer and not yet committed.
    public var queuedBytes: Int
    public var recordsStored: Int
    public var recordsDuplicate: Int
    public var recordsRejected: Int
    public var eventsStored: Int
    public var commits: Int
    public var failedAttempts: Int

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
}

/// Reads the store's writers for `/status`, the STATUS= line and `/metrics`.
///
/// The writers keep their own counters and commit-latency buckets (no per-commit metric calls on the
/// writer threads); this type turns a snapshot of them into JSON fields and Prometheus text when
/// asked, so a scrape costs one lock per region.
public struct RegionReport: Sendable {
    let store: ShardStore

    public init(store: ShardStore) { self.store = store }

    /// Every region's status, sorted by code.
    public func regions() -> [RegionStatus] {
        store.writers.sorted { $0.key < $1.key }.map { region, writer in
            let stats = writer.statistics
            var status = RegionStatus(
                region: region.code, state: "ok", fault: nil, message: nil, queuedBytes: writer.queuedBytes,
                recordsStored: stats.recordsStored, recordsDuplicate: stats.recordsDuplicate,
                recordsRejected: stats.recordsRejected, eventsStored: stats.eventsStored, commits: stats.commits,
                failedAttempts: stats.failedAttempts)
            switch writer.state {
            case .starting: status.state = "starting"
            case .ok: status.state = "ok"
            case .stopped: status.state = "stopped"
            case .degraded(let fault, let message):
                status.state = "degraded"
                status.fault = fault.rawValue
                status.message = message
            }
            return status
        }
    }

    /// Totals over all regions: records stored and data frames committed.
    public func totals() -> (records: Int, frames: Int) {
        store.writers.values.reduce((0, 0)) { sum, writer in
            let stats = writer.statistics
            return (sum.0 + stats.recordsStored + stats.recordsDuplicate, sum.1 + stats.submissionsCommitted)
        }
    }

    /// Per-region gauges, counters and the commit-latency histogram in Prometheus text format.
    public func prometheusText() -> String {
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        let writers = store.writers.sorted { $0.key < $1.key }
        let snapshots = writers.map { ($0.key.code, $0.value.statistics, $0.value.queuedBytes, $0.value.state) }
        header("horgos_region_queue_bytes", "gauge", "Bytes queued for the region's writer and not yet committed.")
        for (region, _, queued, _) in snapshots { out += "horgos_region_queue_bytes{region=\"\(region)\"} \(queued)\n" }
        header("horgos_region_degraded", "gauge", "1 while the region's writer is degraded and acknowledges nothing.")
        for (region, _, _, state) in snapshots {
            if case .degraded(let fault, _) = state {
                out += "horgos_region_degraded{region=\"\(region)\",fault=\"\(fault.rawValue)\"} 1\n"
            } else {
                out += "horgos_region_degraded{region=\"\(region)\",fault=\"\"} 0\n"
            }
        }
        let counters: [(String, String, (RegionWriterStatistics) -> Int)] = [
            ("horgos_region_records_stored_total", "Records newly stored.", { $0.recordsStored }),
            ("horgos_region_duplicates_total", "Records already stored (resends), acknowledged.", {
                $0.recordsDuplicate
            }),
            ("horgos_region_records_rejected_total", "Records outside the time horizon, not stored.", {
                $0.recordsRejected
            }),
            ("horgos_region_events_stored_total", "EVENT frames stored.", { $0.eventsStored }),
            ("horgos_region_commits_total", "Transactions committed.", { $0.commits }),
            ("horgos_region_commit_failures_total", "Transactions that failed and were retried.", {
                $0.failedAttempts
            }),
        ]
        for (name, help, value) in counters {
            header(name, "counter", help)
            for (region, stats, _, _) in snapshots { out += "\(name){region=\"\(region)\"} \(value(stats))\n" }
        }
        header("horgos_commit_latency_seconds", "histogram", "From the first submission of a group-commit transaction to its commit (its window included).")
        let bounds = RegionWriterStatistics.commitLatencyBucketsUs
        for (region, stats, _, _) in snapshots {
            var cumulative = 0
            for (index, bound) in bounds.enumerated() {
                cumulative += stats.commitLatencyCounts[index]
                out += "horgos_commit_latency_seconds_bucket{region=\"\(region)\",le=\"\(Double(bound) / 1e6)\"} "
                    + "\(cumulative)\n"
            }
            cumulative += stats.commitLatencyCounts[bounds.count]
            out += "horgos_commit_latency_seconds_bucket{region=\"\(region)\",le=\"+Inf\"} \(cumulative)\n"
            out += "horgos_commit_latency_seconds_sum{region=\"\(region)\"} \(Double(stats.commitLatencySumUs) / 1e6)\n"
            out += "horgos_commit_latency_seconds_count{region=\"\(region)\"} \(cumulative)\n"
        }
        return out
    }
}
