import Foundation
import HorgosAdminAPI
import HorgosStore
import HorgosWire

extension NodeFleetHealth {
    /// Reads each region's registry under `stateDirectory` (the `/fleet` document of this node).
    public static func read(
        stateDirectory: String, regions: [String], lowSOCPercent: Int, maxCellTempThresholdC: Int,
        asOfMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) -> NodeFleetHealth {
        var rows: [FleetHealth] = []
        var unreadable: [String: String] = [:]
        for code in regions.sorted() {
            guard let region = Region(code) else { continue }
            do throws(StoreError) {
                rows.append(
                    try ShardReader(stateDirectory: stateDirectory, region: region).fleetHealth(
                        asOfMs: asOfMs, lowSOCPercent: lowSOCPercent, maxCellTempThresholdC: maxCellTempThresholdC))
            } catch {
                if error.kind != .notFound { unreadable[code] = "\(error)" }
            }
        }
        return NodeFleetHealth(asOfMs: asOfMs, regions: rows, unreadable: unreadable)
    }
}
