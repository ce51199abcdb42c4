import HorgosWire

/// A region's fleet at a glance: the answer to "how is my fleet in country X?".
///
/// Computed from the registry (one row per vehicle), so its cost depends on the number of vehicles,
/// not on the telemetry volume. "Active alarm" = latest alarm level >= 1, any alarm flag, or an active DTC.
public struct FleetHealth: Sendable, Hashable, Codable {
    public var region: String
    public var vehiclesTotal: Int
    /// Last record within the last hour of `asOfMs`.
    public var reportingLastHour: Int
    /// No record for more than 24 h (or never a stored record).
    public var silentOver24h: Int
    public var withActiveAlarms: Int
    /// Latest SOC below `lowSOCPercent`.
    public var lowSOC: Int
    /// Latest max cell temperature above `maxCellTempThresholdC`.
    public var overTemperature: Int
    /// Mean of the latest SOC of vehicles that reported one (nil: none did).
    public var averageSOC: Double?
    public var asOfMs: Int64
    public var lowSOCPercent: Int
    public var maxCellTempThresholdC: Int
}

/// One vehicle's latest known state, from the registry.
///
/// Position, SOC and temperatures are the last values reported as available; `lastSeenMs` is the
/// newest stored device timestamp. Nil fields were never reported.
public struct VehicleState: Sendable, Hashable, Codable {
    public var vin: String
    public var firstSeenMs: Int64?
    public var lastSeenMs: Int64?
    /// Server time of the last submission that touched this vehicle.
    public var lastReceivedMs: Int64?
    public var latitudeE7: Int32?
    public var longitudeE7: Int32?
    public var speedDkmh: UInt16?
    public var soc: UInt8?
    public var maxCellTemp: Int8?
    public var minCellTemp: Int8?
    public var status: UInt16?
    public var maxAlarmLevel: UInt8?
    public var alarmFlags: UInt32
    public var alarmTimeMs: Int64?
    public var records: Int
    public var duplicates: Int
    public var rejected: Int
    public var events: Int
    public var activeDTCs: [ActiveDTC]
}

/// A diagnostic trouble code that is active (last reported state 1) on a vehicle.
public struct ActiveDTC: Sendable, Hashable, Codable {
    public var source: UInt8
    public var code: UInt32
    public var sinceMs: Int64
}

/// One stored telemetry record of a track: its device timestamp and fields, nil where "not available".
public struct TrackPoint: Sendable, Hashable, Codable {
    public var timestampMs: Int64
    public var latitudeE7: Int32?
    public var longitudeE7: Int32?
    public var odometerHm: UInt32?
    public var speedDkmh: UInt16?
    public var headingCdeg: UInt16?
    public var packVoltageDv: UInt16?
    public var packCurrentDa: Int16?
    public var soc: UInt8?
    public var maxCellTemp: Int8?
    public var minCellTemp: Int8?
    public var maxAlarmLevel: UInt8?
    public var status: UInt16
    public var auxBatteryCv: UInt16?
    public var alarmFlags: UInt32
    public var remainingRangeKm: UInt16?

    /// The wire record with `NotAvailable` sentinels for nil, offset from `baseTimeMs`.
    public func record(baseTimeMs: Int64) -> TelemetryRecord {
        typealias NA = TelemetryRecord.NotAvailable
        return TelemetryRecord(
            timeOffsetMs: UInt32(truncatingIfNeeded: timestampMs - baseTimeMs), latitudeE7: latitudeE7 ?? NA.coordinate,
            longitudeE7: longitudeE7 ?? NA.coordinate, odometerHm: odometerHm ?? NA.u32, speedDkmh: speedDkmh ?? NA.u16,
            headingCdeg: headingCdeg ?? NA.u16, packVoltageDv: packVoltageDv ?? NA.u16,
            packCurrentDa: packCurrentDa ?? NA.current, soc: soc ?? NA.u8, maxCellTemp: maxCellTemp ?? NA.temperature,
            minCellTemp: minCellTemp ?? NA.temperature, maxAlarmLevel: maxAlarmLevel ?? NA.u8, status: status,
            auxBatteryCv: auxBatteryCv ?? NA.u16, alarmFlags: alarmFlags, remainingRangeKm: remainingRangeKm ?? NA.u16)
    }
}

/// A vehicle with an active alarm, for the operator's alarm list.
public struct VehicleAlarm: Sendable, Hashable, Codable {
    public var vin: String
    public var maxAlarmLevel: UInt8?
    public var alarmFlags: UInt32
    /// `AlarmBit` names of `alarmFlags`.
    public var alarmNames: [String]
    public var alarmTimeMs: Int64?
    public var lastSeenMs: Int64?
    public var activeDTCs: [ActiveDTC]
}

/// One file of a region in the shard inventory.
public struct ShardFile: Sendable, Hashable, Codable {
    public var name: String
    /// "registry" or "telemetry".
    public var kind: String
    public var schemaVersion: Int
    /// Database plus WAL bytes on disk.
    public var bytes: Int64
    /// Telemetry rows (partitions) or vehicles (registry).
    public var rows: Int
    /// Partition day range [start, end) in ms (nil for the registry).
    public var partitionStartMs: Int64?
    public var partitionEndMs: Int64?
    /// Oldest and newest stored device timestamps (partitions; nil when empty).
    public var firstRecordMs: Int64?
    public var lastRecordMs: Int64?
}

/// The result of an integrity check of one file.
public struct IntegrityReport: Sendable, Hashable, Codable {
    public var name: String
    public var ok: Bool
    /// SQLite's messages ("ok" when fine).
    public var messages: [String]
}

/// A damaged shard file the daemon moved aside (`horgosctl shards` lists them).
public struct QuarantinedFile: Sendable, Hashable, Codable {
    /// Its name now, e.g. `telemetry-2026-11-29.sqlite.quarantined-1764417600000`.
    public var name: String
    /// The name it had (a new file of that name took its place).
    public var originalName: String
    /// When it was moved aside (ms since the epoch).
    public var quarantinedAtMs: Int64?
    public var bytes: Int64
}
