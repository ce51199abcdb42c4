import Logging
import ServiceLifecycle

/// Speaks the systemd notify protocol for the daemon's lifetime: WATCHDOG=1 pings while healthy, a STATUS=
/// line with live counters, and STOPPING=1 as soon as graceful shutdown begins.
///
/// READY=1 is not sent here: the daemon sends it once its listeners are bound (see `horgosd`). List this
/// service last in the ServiceGroup so it is the first to hear of shutdown. Limits: the health check runs on
/// each ping; a check that returns false withholds the ping, and systemd then restarts the unit.
public struct SystemdService: Service, CustomStringConvertible {
    private let notifier: SystemdNotifier
    private let watchdog: SystemdWatchdog?
    private let statusInterval: Duration
    private let isHealthy: @Sendable () -> Bool
    private let statusLine: @Sendable () -> String
    private let onStopping: @Sendable () -> Void
    private let logger: Logger

    /// - Parameters:
    ///   - watchdog: from `WATCHDOG_USEC`; nil disables pings.
    ///   - statusInterval: how often STATUS= is refreshed.
    ///   - isHealthy: true while the daemon makes progress (writers commit, event loops answer).
    ///   - statusLine: one line of live counters.
    ///   - onStopping: called when graceful shutdown begins (e.g. to make /health answer 503).
    public init(
        notifier: SystemdNotifier,
        watchdog: SystemdWatchdog?,
        statusInterval: Duration = .seconds(10),
        isHealthy: @escaping @Sendable () -> Bool = { true },
        statusLine: @escaping @Sendable () -> String,
        onStopping: @escaping @Sendable () -> Void = {},
        logger: Logger
    ) {
        self.notifier = notifier
        self.watchdog = watchdog
        self.statusInterval = statusInterval
        self.isHealthy = isHealthy
        self.statusLine = statusLine
        self.onStopping = onStopping
        self.logger = logger
    }

    /// `systemd notifier`.
    public var description: String { "systemd notifier" }

    /// Pings and refreshes the status until graceful shutdown, then sends STOPPING=1 and returns.
    public func run() async throws {
        let tick = min(watchdog?.pingInterval ?? statusInterval, statusInterval)
        var sinceStatus = Duration.zero
        if let watchdog {
            logger.info("systemd watchdog enabled", metadata: ["timeout": "\(watchdog.timeout)"])
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
            } catch {
                break
            }
            if Task.isShuttingDownGracefully { break }
            if watchdog != nil {
                if isHealthy() {
                    notifier.watchdog()
                } else {
                    logger.warning("watchdog ping withheld: daemon is not making progress")
                }
            }
            sinceStatus += tick
            if sinceStatus >= statusInterval {
                sinceStatus = .zero
                notifier.status(statusLine())
            }
        }
        onStopping()
        notifier.stopping(status: "stopping: " + statusLine())
        logger.notice("graceful shutdown started")
    }
}
