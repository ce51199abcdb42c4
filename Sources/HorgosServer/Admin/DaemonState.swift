import Foundation
import HorgosAdminAPI
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
    /// Gives the number of open connections of every listener, and per protocol (set once they exist).
    private let connectionCount: Mutex<(total: @Sendable () -> Int, byProtocol: @Sendable () -> [String: Int])?> =
        Mutex(nil)
    /// Gives the bytes held against `limits.max_buffered_bytes`.
    private let bufferedBytes: Mutex<(@Sendable () -> Int)?> = Mutex(nil)
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

    /// Wires the live connection count (every listener) and its split by protocol.
    public func setConnectionReporter(
        _ total: @escaping @Sendable () -> Int, byProtocol: @escaping @Sendable () -> [String: Int] = { [:] }
    ) {
        connectionCount.withLock { $0 = (total, byProtocol) }
    }

    /// Wires the buffered-bytes figure.
    public func setBufferedBytesReporter(_ report: @escaping @Sendable () -> Int) {
        bufferedBytes.withLock { $0 = report }
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
        let counters = connectionCount.withLock { $0 }
        let connections = counters?.total() ?? 0
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
            connectionsByProtocol: counters?.byProtocol() ?? [:],
            regions: regionStates,
            framesPerSecond: (rates.framesPerSecond * 10).rounded() / 10,
            recordsPerSecond: (rates.recordsPerSecond * 10).rounded() / 10,
            degradedRegions: regionStates.filter { $0.state == "degraded" }.map(\.region),
            queuedBytes: regionStates.reduce(0) { $0 + $1.queuedBytes },
            bufferedBytes: bufferedBytes.withLock { $0 }?() ?? 0,
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
