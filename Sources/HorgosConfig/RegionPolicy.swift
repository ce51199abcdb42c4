import Configuration

/// What the law of one market asks of its data on this node: how long it is kept, whether it may leave
/// the node (through the stream, through backups), and how precisely positions are stored.
///
/// The effective policy of a served region (``HorgosConfiguration/policy(for:)``): its `policy.<CC>.*`
/// keys over the node-wide defaults. Every key is optional:
///
/// | key | default | allowed |
/// |---|---|---|
/// | `policy.<CC>.retention_days` | `store.retention_days` | 1...36500: day files of the region older than this are deleted |
/// | `policy.<CC>.stream` | `true` | `false`: the region's entries are never published to the stream |
/// | `policy.<CC>.backup` | `true` | `false`: `horgosctl backup` leaves the region out (and says so) |
/// | `policy.<CC>.position_decimals` | as received (7) | 0...7: decimal places of a degree kept in stored positions |
///
/// `<CC>` is a configured region's code in upper case (`policy.RU.stream: false`; in the environment
/// `HORGOS_POLICY_RU_STREAM=false`). Keys of regions the node does not serve are not read.
public struct RegionPolicy: Sendable, Hashable, Codable {
    /// Days of day files kept.
    public var retentionDays: Int
    /// Whether the region's data may be published to the stream (a consumer outside this node).
    public var stream: Bool
    /// Whether the region's shards may be copied by `horgosctl backup`.
    public var backup: Bool
    /// Decimal places of a degree kept in stored latitudes and longitudes (7: as received, 1e-7 degree;
    /// 2: about 1.1 km; 0: about 111 km).
    public var positionDecimals: Int

    /// A policy from its parts.
    public init(retentionDays: Int, stream: Bool = true, backup: Bool = true, positionDecimals: Int = 7) {
        self.retentionDays = retentionDays
        self.stream = stream
        self.backup = backup
        self.positionDecimals = positionDecimals
    }

    /// One line for logs and tables: `retention 30 d, stream no, backup yes, positions 3 decimals`.
    public var summary: String {
        "retention \(retentionDays) d, stream \(stream ? "yes" : "no"), backup \(backup ? "yes" : "no"), "
            + (positionDecimals >= 7 ? "positions as received" : "positions \(positionDecimals) decimals")
    }
}

/// The `policy.<CC>.*` keys one region sets (nil: not set, the node-wide default applies).
public struct RegionPolicyOverride: Sendable, Hashable {
    /// `policy.<CC>.retention_days`.
    public var retentionDays: Int?
    /// `policy.<CC>.stream`.
    public var stream: Bool?
    /// `policy.<CC>.backup`.
    public var backup: Bool?
    /// `policy.<CC>.position_decimals`.
    public var positionDecimals: Int?

    /// Overrides from their parts (all nil: nothing overridden).
    public init(retentionDays: Int? = nil, stream: Bool? = nil, backup: Bool? = nil, positionDecimals: Int? = nil) {
        self.retentionDays = retentionDays
        self.stream = stream
        self.backup = backup
        self.positionDecimals = positionDecimals
    }

    /// True when no key is set.
    public var isEmpty: Bool { self == RegionPolicyOverride() }

    /// The four keys of `region` read from the configuration, each validated (exit 78 naming the key).
    init(keys: KeyReader, region: String) throws(HorgosConfigurationError) {
        let prefix = "policy.\(region)."
        retentionDays = try keys.optionalInt(prefix + "retention_days", in: 1...36500)
        stream = try keys.optionalBool(prefix + "stream")
        backup = try keys.optionalBool(prefix + "backup")
        positionDecimals = try keys.optionalInt(
            prefix + "position_decimals", in: 0...7,
            allowed: "use 0...7 decimal places of a degree (7 keeps positions as received; 2 is about 1.1 km)")
    }
}

/// The `audit.*` keys: where the audit log of operator actions is kept.
public struct AuditSettings: Sendable, Hashable {
    /// `audit.path`: the append-only, hash-chained audit log (its anchor is the same path plus `.head`).
    /// Empty (default): `<state_directory>/audit.log`. Written by the daemon (erase, reload) and by
    /// `horgosctl` (export, backup, restore, prune, pki issue and revoke) as the invoking user.
    public var path: String = ""

    /// The default: `<state_directory>/audit.log`.
    public init(path: String = "") {
        self.path = path
    }
}

extension HorgosConfiguration {
    /// The effective policy of `region`: its `policy.<CC>.*` keys over the defaults (retention from
    /// `store.retention_days`, stream and backup allowed, positions as received). Also for a region the
    /// node does not serve (then the defaults).
    public func policy(for region: String) -> RegionPolicy {
        let override = policies[region] ?? RegionPolicyOverride()
        return RegionPolicy(
            retentionDays: override.retentionDays ?? store.retentionDays, stream: override.stream ?? true,
            backup: override.backup ?? true, positionDecimals: override.positionDecimals ?? 7)
    }

    /// `audit.path`, or `<state_directory>/audit.log` when it is empty.
    public var effectiveAuditPath: String {
        if !audit.path.isEmpty { return audit.path }
        return stateDirectory.hasSuffix("/") ? stateDirectory + "audit.log" : stateDirectory + "/audit.log"
    }
}

extension KeyReader {
    /// An integer key that may be absent (nil), validated when present.
    func optionalInt(_ key: String, in range: ClosedRange<Int>, allowed: String? = nil) throws(HorgosConfigurationError)
        -> Int?
    {
        guard isSet(key) else { return nil }
        return try int(key, default: range.lowerBound, in: range, allowed: allowed)
    }

    /// A boolean key that may be absent (nil), validated when present.
    func optionalBool(_ key: String) throws(HorgosConfigurationError) -> Bool? {
        guard isSet(key) else { return nil }
        return try bool(key, default: true)
    }

    /// True when a provider has a value (or a list) for `key`.
    func isSet(_ key: String) -> Bool {
        reader.string(forKey: ConfigKey(key)) != nil || reader.stringArray(forKey: ConfigKey(key)) != nil
    }
}
