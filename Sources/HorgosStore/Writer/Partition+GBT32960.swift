import CSQLite
import HorgosGBT32960

/// The typed GB/T 32960 tables of one partition and their prepared statements.
///
/// The tables are created in a day file by its first GB/T 32960 frame (`CREATE TABLE IF NOT EXISTS`,
/// additive: the schema version is unchanged and readers check `sqlite_master`). One row per frame
/// in `gbt_samples`; per-cell voltages and per-probe temperatures are one row per subsystem with
/// the values as a BLOB exactly as sent (a row per cell would be ~100 B-tree inserts per frame;
/// BENCHMARKS-store.md has the measurement). Every table is keyed by (vehicle, time, …) WITHOUT
/// ROWID: the battery-health queries read one vehicle's time range, and a replay is idempotent.
final class GBT32960Tables {
    static let ddl = """
        CREATE TABLE IF NOT EXISTS gbt_samples(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL, command INTEGER NOT NULL,
            vehicle_state INTEGER, charging_state INTEGER, running_mode INTEGER, dcdc_state INTEGER,
            gear INTEGER, insulation_kohm INTEGER, accelerator_pct INTEGER, brake_pct INTEGER,
            max_cell_mv INTEGER, max_cell_subsystem INTEGER, max_cell_number INTEGER,
            min_cell_mv INTEGER, min_cell_subsystem INTEGER, min_cell_number INTEGER,
            max_temp_c INTEGER, max_temp_subsystem INTEGER, max_temp_probe INTEGER,
            min_temp_c INTEGER, min_temp_subsystem INTEGER, min_temp_probe INTEGER,
            engine_state INTEGER, crankshaft_rpm INTEGER, fuel_rate INTEGER,
            fuel_cell_voltage_dv INTEGER, fuel_cell_current_da INTEGER, fuel_consumption INTEGER,
            fuel_cell_probes BLOB, h2_max_temp_dc INTEGER, h2_max_concentration INTEGER,
            h2_max_pressure INTEGER, fuel_cell_dcdc_state INTEGER,
            alarm_level_raw INTEGER, fault_count INTEGER NOT NULL, custom_blocks INTEGER NOT NULL,
            brake_on INTEGER,
            PRIMARY KEY(vehicle_id, ts)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gbt_motors(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL, number INTEGER NOT NULL, state INTEGER,
            controller_temp_c INTEGER, speed_rpm INTEGER, torque_dnm INTEGER, temp_c INTEGER,
            voltage_dv INTEGER, current_da INTEGER,
            PRIMARY KEY(vehicle_id, ts, number)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gbt_cell_voltages(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL, subsystem INTEGER NOT NULL,
            first_cell INTEGER NOT NULL, cell_count INTEGER NOT NULL, total_cells INTEGER NOT NULL,
            voltage_dv INTEGER, current_da INTEGER, min_mv INTEGER, max_mv INTEGER, cells BLOB NOT NULL,
            PRIMARY KEY(vehicle_id, ts, subsystem, first_cell)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gbt_probe_temperatures(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL, subsystem INTEGER NOT NULL,
            probe_count INTEGER NOT NULL, min_c INTEGER, max_c INTEGER, temps BLOB NOT NULL,
            PRIMARY KEY(vehicle_id, ts, subsystem)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gbt_faults(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL, source INTEGER NOT NULL, code INTEGER NOT NULL,
            PRIMARY KEY(vehicle_id, ts, source, code)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gbt_2025_samples(
            vehicle_id INTEGER NOT NULL, ts INTEGER NOT NULL, coordinate_system INTEGER,
            latitude_e7 INTEGER, longitude_e7 INTEGER, signature_algorithm INTEGER NOT NULL,
            signature_bytes INTEGER NOT NULL, levelled_alarms BLOB,
            PRIMARY KEY(vehicle_id, ts)) WITHOUT ROWID;
        """

    /// The four fault-code lists (made once: `allCases` builds an array on every call).
    static let faultSources = GBT32960FaultSource.allCases

    let insertSample: SQLiteStatement
    let insertMotor: SQLiteStatement
    let insertCells: SQLiteStatement
    let insertProbes: SQLiteStatement
    let insertFault: SQLiteStatement
    let insert2025: SQLiteStatement
    /// The region's position rounding (`RegionStorePolicy.positionStep`), for the 2025 positions.
    let positionStep: Int64

    init(_ db: SQLiteConnection, positionStep: Int64) throws(StoreError) {
        self.positionStep = positionStep
        try db.exec(Self.ddl)
        // `brake_on` came after the first day files: one written before it gets the column (NULL in
        // its old rows) the first time it is opened for writing.
        if try db.scalar("SELECT count(*) FROM pragma_table_info('gbt_samples') WHERE name = 'brake_on'") == 0 {
            try db.exec("ALTER TABLE gbt_samples ADD COLUMN brake_on INTEGER")
        }
        insertSample = try db.prepare(
            """
            INSERT OR IGNORE INTO gbt_samples VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
              ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34,
              ?35, ?36, ?37, ?38)
            """)
        insertMotor = try db.prepare(
            "INSERT OR IGNORE INTO gbt_motors VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
        insertCells = try db.prepare(
            "INSERT OR IGNORE INTO gbt_cell_voltages VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
        insertProbes = try db.prepare(
            "INSERT OR IGNORE INTO gbt_probe_temperatures VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        insertFault = try db.prepare("INSERT OR IGNORE INTO gbt_faults VALUES (?1, ?2, ?3, ?4)")
        insert2025 = try db.prepare("INSERT OR IGNORE INTO gbt_2025_samples VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
    }

    /// Writes the rows of one frame except the cell and probe lists (`insertLists`).
    func insertDetails(_ r: GBT32960RealtimeReport, command: GBT32960Command, vehicleID: Int64, ts: Int64)
        throws(StoreError)
    {
        let s = insertSample
        s.bind(1, vehicleID)
        s.bind(2, ts)
        s.bind(3, Int64(command.rawValue))
        let v = r.vehicle
        s.bind(4, v?.vehicleState)
        s.bind(5, v?.chargingState)
        s.bind(6, v?.runningMode)
        s.bind(7, v?.dcdcState)
        s.bind(8, v?.gear)
        s.bind(9, v?.insulationKohm)
        s.bind(10, v?.acceleratorPedal)
        s.bind(11, v?.brakePedal)
        let x = r.extremes
        s.bind(12, x?.maxCellVoltageMv)
        s.bind(13, x?.maxVoltageSubsystem)
        s.bind(14, x?.maxVoltageCell)
        s.bind(15, x?.minCellVoltageMv)
        s.bind(16, x?.minVoltageSubsystem)
        s.bind(17, x?.minVoltageCell)
        s.bind(18, x?.maxTemperature)
        s.bind(19, x?.maxTemperatureSubsystem)
        s.bind(20, x?.maxTemperatureProbe)
        s.bind(21, x?.minTemperature)
        s.bind(22, x?.minTemperatureSubsystem)
        s.bind(23, x?.minTemperatureProbe)
        let e = r.engine
        s.bind(24, e?.state)
        s.bind(25, e?.crankshaftRpm)
        s.bind(26, e?.fuelRate)
        let f = r.fuelCell
        s.bind(27, f?.voltageDv)
        s.bind(28, f?.currentDa)
        s.bind(29, f?.consumption)
        if let f { s.bindStatic(30, blob: f.bytes.slice(8, f.probeCount)) } else { s.bindNull(30) }
        s.bind(31, f?.hydrogenMaxTemperatureDc)
        s.bind(32, f?.hydrogenMaxConcentration)
        s.bind(33, f?.hydrogenMaxPressure)
        s.bind(34, f?.dcdcState)
        let a = r.alarms
        s.bind(35, a.map { $0.maxLevelRaw })
        var faults = 0
        if let a { for source in Self.faultSources { faults += a.faults(source).count } }
        s.bind(36, faults)
        s.bind(37, r.customBlocks)
        s.bind(38, v?.brakeOn.map { $0 ? 1 : 0 })
        try s.run()

        if let motors = r.driveMotors {
            let m = insertMotor
            for index in 0..<motors.count {
                let motor = motors[index]
                m.bind(1, vehicleID)
                m.bind(2, ts)
                m.bind(3, Int64(motor.number))
                m.bind(4, motor.state)
                m.bind(5, motor.controllerTemperature)
                m.bind(6, motor.speedRpm)
                m.bind(7, motor.torqueDnm)
                m.bind(8, motor.temperature)
                m.bind(9, motor.inputVoltageDv)
                m.bind(10, motor.dcBusCurrentDa)
                try m.run()
            }
        }
        if let signature = r.signature { try insertEdition2025(r, signature, vehicleID: vehicleID, ts: ts) }
        if let a {
            for source in Self.faultSources {
                for code in a.faults(source) {
                    insertFault.bind(1, vehicleID)
                    insertFault.bind(2, ts)
                    insertFault.bind(3, Int64(source.rawValue))
                    insertFault.bind(4, Int64(code))
                    try insertFault.run()
                }
            }
        }
    }

    /// The `gbt_2025_samples` row of a 2025 frame: what that edition adds to the columns both
    /// editions share. The coordinates are kept as sent, in the unit's coordinate system (the
    /// `telemetry` row has them only when that is WGS-84); the signature's algorithm and size, not
    /// its bytes (Horgos does not verify signatures); the levelled alarms as sent.
    func insertEdition2025(_ r: GBT32960RealtimeReport, _ signature: GBT32960Signature, vehicleID: Int64, ts: Int64)
        throws(StoreError)
    {
        let s = insert2025
        s.bind(1, vehicleID)
        s.bind(2, ts)
        let p = r.position
        s.bind(3, p?.coordinateSystem)
        s.bind(4, p?.latitudeE7.map { RegionStorePolicy.coarsen(Int64($0), step: positionStep) })
        s.bind(5, p?.longitudeE7.map { RegionStorePolicy.coarsen(Int64($0), step: positionStep) })
        s.bind(6, Int64(signature.algorithm))
        s.bind(7, signature.r.count + signature.s.count)
        if let levelled = r.alarms?.levelledAlarms { s.bindStatic(8, blob: levelled.rawBytes) } else { s.bindNull(8) }
        try s.run()
    }

    /// Writes the cell-voltage and probe-temperature lists (also for a frame whose sample is already
    /// stored: a split cell list arrives in several frames of one collection time).
    func insertLists(_ r: GBT32960RealtimeReport, vehicleID: Int64, ts: Int64) throws(StoreError) {
        if let cells = r.cellVoltages {
            let c = insertCells
            for subsystem in cells {
                let (low, high) = GBT32960Mapping.availableRange(subsystem.frameCellCount, subsystem.cellVoltageMv)
                c.bind(1, vehicleID)
                c.bind(2, ts)
                c.bind(3, Int64(subsystem.number))
                c.bind(4, subsystem.firstCell)
                c.bind(5, subsystem.frameCellCount)
                c.bind(6, subsystem.totalCells)
                c.bind(7, subsystem.voltageDv)
                c.bind(8, subsystem.currentDa)
                c.bind(9, low)
                c.bind(10, high)
                c.bindStatic(11, blob: subsystem.cellBytes)
                try c.run()
            }
        }
        if let probes = r.probeTemperatures {
            let p = insertProbes
            for subsystem in probes {
                let (low, high) = GBT32960Mapping.availableRange(subsystem.probeCount, subsystem.temperature)
                p.bind(1, vehicleID)
                p.bind(2, ts)
                p.bind(3, Int64(subsystem.number))
                p.bind(4, subsystem.probeCount)
                p.bind(5, low)
                p.bind(6, high)
                p.bindStatic(7, blob: subsystem.probeBytes)
                try p.run()
            }
        }
    }
}

extension Partition {
    /// This partition's GB/T 32960 tables, created on first use.
    func gbt32960Tables() throws(StoreError) -> GBT32960Tables {
        if let tables = gbt32960 { return tables }
        let tables = try GBT32960Tables(db, positionStep: positionStep)
        gbt32960 = tables
        return tables
    }
}

extension SQLiteStatement {
    /// Binds an optional integer (nil is NULL).
    @inline(__always)
    func bind<T: BinaryInteger>(_ index: Int32, _ value: T?) {
        if let value { bind(index, Int64(value)) } else { bindNull(index) }
    }

    /// Binds bytes as a BLOB that stays alive until the statement is stepped and reset (no copy).
    @inline(__always)
    func bindStatic(_ index: Int32, blob bytes: UnsafeRawBufferPointer) {
        // A zero-length blob with a nil pointer would be NULL: bind an empty blob instead.
        if bytes.isEmpty {
            sqlite3_bind_zeroblob(handle, index, 0)
        } else {
            sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), horgos_sqlite_static())
        }
    }
}

extension UnsafeRawBufferPointer {
    /// `count` bytes from `offset` (bounds checked by the caller).
    func slice(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[offset..<(offset + count)])
    }
}
