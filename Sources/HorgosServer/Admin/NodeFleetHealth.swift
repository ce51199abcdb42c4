import Foundation
import HorgosStore

/// The `/fleet` document: fleet health of every region of this node that has stored data.
///
/// `horgosctl fleet --node URL --node URL ...` merges these documents into one table with a node
/// column, so an operator sees the whole fleet across the nodes behind the load balancer. Computed
/// from each region's registry with the same query as `horgosctl fleet` on the shards themselves.
public struct NodeFleetHealth: Codable, Sendable, Hashable {
    /// The moment the counts refer to (ms since the epoch).
    public var asOfMs: Int64
    /// Every region of this node with a registry, sorted by code; regions without data are left out.
    public var regions: [FleetHealth]
    /// Regions whose registry could not be read (damaged or locked), with the error; the others are listed.
    public var unreadable: [String: String]

    /// Reads each region's registry under `stateDirectory`.
    public static func read(
        stateDirectory: String, regions: [String], lowSOCPercent: Int, maxCellTempThresholdC: Int,
        asOfMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) -> NodeFleetHealth {
        var rows: [FleetHealth] = []
        var unreadable: [String: String] = [:]
        for code in regions.sorted() {
            guard let region = HorgosStore.Region(code) else { continue }
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
