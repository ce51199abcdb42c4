/// What erasing one vehicle removed from one region: for every file that held it, the rows deleted
/// per table.
///
/// Produced by the region's applier once the erasure tombstone (journal entry kind 4) is applied and
/// committed (`RegionWriter.submitErase`), and what `horgosctl erase` prints. A region that did not hold
/// the vehicle reports no files.
public struct EraseReport: Sendable, Hashable, Codable {
    /// One file that held rows of the vehicle.
    public struct File: Sendable, Hashable, Codable {
        /// The file's name in the region directory (`telemetry-2026-12-03.sqlite`, `registry.sqlite`).
        public var name: String
        /// Rows deleted per table (`telemetry`, `chunks`, `events`, `gbt_samples`, `vehicles`, ...).
        public var rows: [String: Int]

        /// A file from its parts.
        public init(name: String, rows: [String: Int]) {
            self.name = name
            self.rows = rows
        }
    }

    /// The region code.
    public var region: String
    /// The erased vehicle.
    public var vin: String
    /// The tombstone's journal LSN: entries before it were erased, entries after it are stored.
    public var lsn: UInt64
    /// Files that held the vehicle, day files oldest first, then the registry.
    public var files: [File]

    /// A report from its parts.
    public init(region: String, vin: String, lsn: UInt64 = 0, files: [File] = []) {
        self.region = region
        self.vin = vin
        self.lsn = lsn
        self.files = files
    }

    /// Telemetry records removed (rows of the `telemetry` table in every day file).
    public var telemetryRows: Int { files.reduce(0) { $0 + ($1.rows["telemetry"] ?? 0) } }
    /// Rows removed from every table of every file.
    public var totalRows: Int { files.reduce(0) { $0 + $1.rows.values.reduce(0, +) } }
}
