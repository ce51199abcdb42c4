import Foundation
import HorgosServer
import HorgosStore
import HorgosWire
import Logging
import ServiceLifecycle

extension Daemon {
    /// The shard store's settings from the daemon configuration; store log lines go to the daemon log.
    static func storeConfiguration(_ configuration: HorgosConfiguration, logger: Logger) -> StoreConfiguration {
        let store = configuration.store
        return StoreConfiguration(
            stateDirectory: configuration.stateDirectory,
            regions: configuration.regions.compactMap(Region.init),
            // replicated: the journal's fdatasync, then the stream's gate (Daemon+Stream.swift).
            durability: store.durability == .process ? .process : .disk,
            applyIntervalMs: store.applyIntervalMilliseconds, commitMaxRows: store.commitMaxRows,
            horizon: TimeHorizon(
                pastMs: Int64(store.lateHorizonDays) * 86_400_000, futureMs: Int64(store.futureHorizonHours) * 3_600_000
            ),
            retentionDays: store.retentionDays,
            journalSegmentBytes: store.journalSegmentBytes, journalMaxBytes: store.journalMaxBytes,
            journalMaxDelayMicroseconds: store.journalMaxDelayMicroseconds,
            appliers: store.appliers > 0 ? store.appliers : ProcessInfo.processInfo.activeProcessorCount,
            onJournalFailure: { error in
                // Never retried on the same file (the kernel may have dropped the pages): stop, let
                // systemd restart us, replay the journal; units resend what was not acknowledged.
                logger.critical(
                    "journal write failed; exiting so that a restart replays the journal",
                    metadata: ["error": "\(error)"])
                exit(74)  // EX_IOERR
            },
            log: { level, message in
                switch level {
                case .info: logger.info("\(message)", metadata: ["component": "store"])
                case .warning: logger.warning("\(message)", metadata: ["component": "store"])
                case .error: logger.error("\(message)", metadata: ["component": "store"])
                }
            },
            createdBy: "horgosd \(HorgosServerInfo.version)"
        ).with(regionPolicies: regionStorePolicies(configuration))
    }

    /// True while every region writer's loop has turned in the last 10 s (they turn at least once a
    /// second); a writer hung in a system call withholds the systemd watchdog ping.
    static func writersMakeProgress(_ store: ShardStore) -> Bool {
        let nowNs = SystemdNotifier.monotonicMicroseconds() * 1000
        let journal = store.journalStatistics.lastProgressNs
        guard journal == 0 || nowNs &- journal < 10_000_000_000 else { return false }
        return store.writers.values.allSatisfy { writer in
            let last = writer.statistics.lastProgressNs
            return last == 0 || nowNs &- last < 10_000_000_000
        }
    }
}

/// Owns the shard store in the ServiceGroup: on graceful shutdown (after the listener drained) it commits
/// what is queued, checkpoints and closes every region.
struct StoreService: Service, CustomStringConvertible {
    let store: ShardStore
    let logger: Logger
    /// Called once every region writer has left `.starting` (files opened, or degraded and retrying).
    let onOpen: @Sendable () -> Void

    var description: String { "shard store (\(store.writers.count) regions)" }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let starting = store.writers.values.filter { $0.state == .starting }.count
            if starting == 0 {
                let degraded = store.writers.filter {
                    if case .degraded = $0.value.state { true } else { false }
                }
                if !degraded.isEmpty {
                    logger.warning(
                        "regions degraded at start; they keep retrying",
                        metadata: ["regions": "\(degraded.keys.map(\.code).sorted())"])
                }
                logger.notice("region writers open", metadata: ["regions": "\(store.writers.count)"])
                onOpen()
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        try? await gracefulShutdown()
        logger.notice("stopping region writers")
        store.stop(timeoutMs: 10_000)
        logger.notice("region writers stopped")
    }
}

