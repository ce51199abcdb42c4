import HorgosGBT32960
import HorgosWire

/// A GB/T 32960 journal entry (kind 3) read the way the applier reads it: the frame's VIN, command and
/// report, the collection time in UTC and the native record the shards' `telemetry` row gets
/// (`GBT32960Mapping`). For the stream's record encoder (issue 20), so a consumer sees the row Horgos
/// stores. The report's views point into the entry's bytes: use it while they are alive.
public struct GBT32960StoredReport {
    public let vin: VIN
    public let command: GBT32960Command
    public let edition: GBT32960Edition
    public let report: GBT32960RealtimeReport
    /// Collection time, ms since the epoch (UTC), from the frame's time and the entry's time base.
    public let timestampMs: Int64
    /// The native record of the report (what `telemetry` stores; Proto/GBT32960.md section 7).
    public var record: TelemetryRecord { GBT32960Mapping.record(report) }

    /// Decodes an entry's bytes; nil when it does not hold one realtime or reissue frame (the applier
    /// rejects such an entry too).
    public init?(entry: UnsafeRawBufferPointer) {
        guard let decoded = GBT32960Entry.decode(entry) else { return nil }
        vin = decoded.vin
        command = decoded.header.command
        edition = decoded.header.edition
        report = decoded.report
        timestampMs = decoded.timestampMs
    }
}
