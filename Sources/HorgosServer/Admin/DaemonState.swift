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

    /// The `/status` document.
    public func snapshot() -> DaemonStatus {
        let facts = self.facts.withLock { $0 }
        let connections = connectionCount.withLock { $0 }?() ?? 0
        return DaemonStatus(
            version: HorgosServerInfo.version,
            serving: facts.serving,
            startedAt: startedAt,
            uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
            listeners: facts.listeners,
            connections: connections,
            regions: regions)
    }

    /// One line for systemd's STATUS=.
    public func statusLine() -> String {
        let status = snapshot()
        return "\(status.serving ? "serving" : "not serving"); \(status.connections) connections; "
            + "\(status.regions.count) regions"
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
    /// Regions served.
    public var regions: [String]
}
