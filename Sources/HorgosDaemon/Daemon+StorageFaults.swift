import Foundation
import HorgosConfig
import HorgosServer
import HorgosStore
import HorgosWire
import Logging

/// The daemon's wiring of storage faults (issue 26): the disk reserve and the periodic integrity check
/// from configuration, the disk-full state on `/health` and `/status`, and the operator's
/// acknowledgement of a region's quarantined files on the admin endpoint.
extension Daemon {
    /// `journal.reserve_bytes` and `store.integrity_check_interval_seconds` applied to the store's settings.
    static func withStorageFaultSettings(
        _ store: StoreConfiguration, _ configuration: HorgosConfiguration
    ) -> StoreConfiguration {
        var store = store
        store.journalReserveBytes = configuration.store.journalReserveBytes
        store.integrityCheckIntervalMs = configuration.store.integrityCheckIntervalSeconds * 1000
        return store
    }

    /// `sources` with the storage parts: `/health`'s disk-full detail and the quarantine
    /// acknowledgement; also wires `/status`'s `storage` object.
    func withStorageFaultSources(_ sources: AdminServer.Sources, store: ShardStore) -> AdminServer.Sources {
        var sources = sources
        sources.healthDetail = {
            guard let full = store.journalStatistics.diskFull else { return nil }
            return "disk_full (acknowledging nothing; frames wait; space is watched): \(full)"
        }
        sources.acknowledgeQuarantine = { [logger] code in
            guard let region = HorgosWire.Region(code), let writer = store.writers[region] else { return nil }
            let files = try writer.acknowledgeQuarantine()
            logger.notice(
                "quarantine acknowledged by an operator", metadata: ["region": "\(code)", "files": "\(files)"])
            return QuarantineAcknowledged(region: code, acknowledged: files)
        }
        state.setStorageReporter {
            let journal = store.journalStatistics
            return StorageStatus(
                diskFull: journal.diskFull != nil, diskFullMessage: journal.diskFull,
                diskFullSince: journal.diskFullSinceMs.map { Date(timeIntervalSince1970: Double($0) / 1000) },
                reserveBytes: journal.reserveBytes, heldFrames: journal.heldSubmissions,
                journalBytes: journal.diskBytes, journalSegments: journal.segments, journalFailure: journal.failure)
        }
        return sources
    }
}

/// The answer of `POST /quarantine/CC/acknowledge`.
struct QuarantineAcknowledged: Encodable, Sendable {
    /// The region.
    var region: String
    /// The quarantined files this acknowledgement covered (empty: there were none).
    var acknowledged: [String]
}
