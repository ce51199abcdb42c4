import HorgosStore

/// The `/fleet` document: fleet health of every region of this node that has stored data.
///
/// `horgosctl fleet --node URL --node URL ...` merges these documents into one table with a node
/// column, so an operator sees the whole fleet across the nodes behind the load balancer. The daemon
/// computes it from each region's registry with the same query as `horgosctl fleet` on the shards.
public struct NodeFleetHealth: Codable, Sendable, Hashable {
    /// The moment the counts refer to (ms since the epoch).
    public var asOfMs: Int64
    /// Every region of this node with a registry, sorted by code; regions without data are left out.
    public var regions: [FleetHealth]
    /// Regions whose registry could not be read (damaged or locked), with the error; the others are listed.
    public var unreadable: [String: String]

    /// A document from its parts.
    public init(asOfMs: Int64, regions: [FleetHealth], unreadable: [String: String] = [:]) {
        self.asOfMs = asOfMs
        self.regions = regions
        self.unreadable = unreadable
    }

    private enum CodingKeys: String, CodingKey { case asOfMs, regions, unreadable }

    /// Reads a document; a node that sends no `unreadable` field had none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        asOfMs = try c.decode(Int64.self, forKey: .asOfMs)
        regions = try c.decode([FleetHealth].self, forKey: .regions)
        unreadable = try c.decodeIfPresent([String: String].self, forKey: .unreadable) ?? [:]
    }
}
