import CSQLite
import HorgosWire

/// Everything a region writer does with SQLite, on the writer thread only.
///
/// Any error leaves the engine to be `close()`d by the caller: the in-memory state (vehicle ids,
/// high-water marks) is then rebuilt from disk at the next `open()`, so a rolled-back transaction
/// can never leave memory and files disagreeing.
final class RegionEngine {
    let region: Region
    let configuration: StoreConfiguration
    let directory: String
    private(set) var registry: RegistryDatabase?
    var partitions: [Int64: Partition] = [:]  // internal: RegionEngine+Erase.swift
    var vehicleIndex: [VIN: Int] = [:]  // internal: RegionEngine+Erase.swift
    var indexByID: [Int64: Int] = [:]  // internal: RegionEngine+Erase.swift
    var entries: [VehicleEntry] = []  // internal: RegionEngine+GBT32960.swift
    var touched: [Int] = []  // internal: RegionEngine+Erase.swift
    var nextVehicleID: Int64 = 1  // internal: RegionEngine+Erase.swift
    /// Erasures of the running transaction and the files they touched (RegionEngine+Erase.swift).
    var erasures = ErasureState()
    private var lastMaintenanceMs: Int64 = Int64.min
    /// Effect of the running transaction, for the statistics.
    var txRows = 0  // internal: RegionEngine+GBT32960.swift
    /// The region's applied LSN as its registry's `meta` says (read at open, written at commit).
    private(set) var appliedLSN: UInt64 = 0
    private var setAppliedLSN: SQLiteStatement?

    init(region: Region, configuration: StoreConfiguration) {
        self.region = region
        self.configuration = configuration
        self.directory = StoreFiles.regionDirectory(configuration.stateDirectory, region)
    }

    var isOpen: Bool { registry != nil }

    // MARK: open and close

    /// Opens the registry and every partition within the horizon, and rebuilds the in-memory state.
    func open(nowMs: Int64) throws(StoreError) {
        close()
        try StoreFiles.createDirectory(directory)
        let registry = try RegistryDatabase(
            path: "\(directory)/\(StoreFiles.registryFileName)", region: region, configuration: configuration)
        self.registry = registry
        appliedLSN = UInt64(
            try registry.db.prepare("SELECT value FROM meta WHERE key = 'applied_lsn'").firstText() ?? "0") ?? 0
        setAppliedLSN = try registry.db.prepare(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('applied_lsn', ?1)")
        let stmt = try registry.db.prepare("SELECT id, vin FROM vehicles")
        while try stmt.step() {
            guard let vin = VIN(stmt.text(1)) else { continue }
            addEntry(id: stmt.int64(0), vin: vin)
        }
        try removeExpiredPartitions(nowMs: nowMs)
        // Every partition within the horizon is read once for its high-water marks; only the days
        // around today stay open (three files a connection: a region must not hold 27 descriptors
        // for days that see no traffic, 41 regions would pass the usual 1,024 limit).
        let today = UTCDay(epochMs: nowMs).dayNumber
        for day in StoreFiles.partitionDays(in: directory) where isWithinHorizon(day, nowMs: nowMs) {
            _ = try partition(day.dayNumber)
            if abs(day.dayNumber - today) > 1 { partitions[day.dayNumber] = nil }
        }
        lastMaintenanceMs = nowMs
    }

    /// Closes every connection (rolling back an open transaction) and forgets the in-memory state.
    func close() {
        for partition in partitions.values where partition.db.inTransaction { try? partition.db.exec("ROLLBACK") }
        if let registry, registry.db.inTransaction { try? registry.db.exec("ROLLBACK") }
        partitions.removeAll()
        setAppliedLSN = nil
        registry = nil
        vehicleIndex.removeAll(keepingCapacity: true)
        indexByID.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
        touched.removeAll(keepingCapacity: true)
        nextVehicleID = 1
        txRows = 0
        erasures = ErasureState()
    }

    private func addEntry(id: Int64, vin: VIN) {
        let index = entries.count
        entries.append(VehicleEntry(id: id, vin: vin))
        vehicleIndex[vin] = index
        indexByID[id] = index
        nextVehicleID = max(nextVehicleID, id + 1)
    }

    func isWithinHorizon(_ day: UTCDay, nowMs: Int64) -> Bool {
        day.endMs > nowMs - configuration.horizon.pastMs && day.startMs <= nowMs + configuration.horizon.futureMs
    }

    /// The open partition of `dayNumber`, opened (and created) on first use. Opening loads its
    /// high-water marks and re-registers vehicles the registry lost (a crash between the partition's
    /// commit and the registry's).
    func partition(_ dayNumber: Int64) throws(StoreError) -> Partition {
        if let partition = partitions[dayNumber] { return partition }
        let day = UTCDay(dayNumber: dayNumber)
        let partition = try Partition(
            day: day, path: "\(directory)/\(day.partitionFileName)", region: region, configuration: configuration)
        guard let registry else { throw StoreError(.stopped, message: "registry closed", context: "partition") }
        for (id, text) in try partition.vehicles() where indexByID[id] == nil {
            guard let vin = VIN(text) else { continue }
            if vehicleIndex[vin] != nil {
                configuration.log(
                    .warning, "\(region) \(day): vehicle \(text) has id \(id) here and another in the registry")
                continue
            }
            try registry.insert(id: id, vin: vin, nowMs: configuration.clock())
            addEntry(id: id, vin: vin)
        }
        for (id, mark) in try partition.highWaterMarks() {
            if let index = indexByID[id], mark > entries[index].highWaterMark { entries[index].highWaterMark = mark }
        }
        partitions[dayNumber] = partition
        return partition
    }

    // MARK: transactions

    func begin() throws(StoreError) {
        guard let registry else { throw StoreError(.stopped, message: "not open", context: "begin \(region)") }
        try registry.db.exec("BEGIN IMMEDIATE")
        txRows = 0
    }

    /// Writes the registry's per-vehicle updates and commits every file of the transaction:
    /// partitions first, the registry last (a crash in between is repaired at the next open, and the
    /// journal replays from the applied LSN the registry holds: the partitions' rows are then
    /// duplicates, skipped). `appliedLSN` is stored in the registry's `meta` in the same transaction.
    func commit(nowMs: Int64, appliedLSN lsn: UInt64? = nil) throws(StoreError) {
        guard let registry else { throw StoreError(.stopped, message: "not open", context: "commit \(region)") }
        if let lsn, lsn > appliedLSN, let setAppliedLSN {
            setAppliedLSN.bind(1, String(lsn))
            try setAppliedLSN.run()
        }
        for index in touched {
            try registry.update(entries[index], nowMs: nowMs)
            entries[index].resetTransaction()
            entries[index].unregistered = false
        }
        touched.removeAll(keepingCapacity: true)
        for partition in partitions.values where partition.inTransaction {
            try partition.db.exec("COMMIT")
            partition.inTransaction = false
        }
        try registry.db.exec("COMMIT")
        if let lsn, lsn > appliedLSN { appliedLSN = lsn }
    }

    /// Applies one journal entry's payload (shape-checked at submission) with the row writer of its
    /// kind. `arrivalMs` is the server time the entry records: the time-horizon rule's "now".
    func apply(_ kind: JournalEntryKind, payload: UnsafeRawBufferPointer, arrivalMs: Int64) throws(StoreError)
        -> CommitOutcome
    {
        switch kind {
        case .telemetry: try applyTelemetry(payload, nowMs: arrivalMs)
        case .event: try applyEvent(payload, nowMs: arrivalMs)
        case .gbt32960: try applyGBT32960(payload, nowMs: arrivalMs)
        case .erase: try applyErase(payload, nowMs: arrivalMs)
        }
    }

    /// Checkpoints every open file completely (its WAL is fsynced, copied into the database and the
    /// database fsynced): true when every file's WAL was fully copied, so everything committed so far
    /// survives a power loss. Readers holding old snapshots can make it return false (try later).
    func checkpointForDurability() throws(StoreError) -> Bool {
        var complete = true
        for partition in partitions.values {
            let (log, done) = try partition.db.checkpoint(truncate: false)
            if done < log { complete = false }
        }
        if let registry {
            let (log, done) = try registry.db.checkpoint(truncate: false)
            if done < log { complete = false }
        }
        return complete
    }

    // MARK: applying submissions

    func vehicle(_ vin: VIN, nowMs: Int64) throws(StoreError) -> Int {
        if let index = vehicleIndex[vin] {
            if !entries[index].touched {
                entries[index].touched = true
                touched.append(index)
            }
            return index
        }
        // The registry row is written at commit (`RegistryDatabase.update`), in one insert.
        addEntry(id: nextVehicleID, vin: vin)
        let index = entries.count - 1
        entries[index].unregistered = true
        entries[index].touched = true
        touched.append(index)
        return index
    }

    /// Stores one TELEMETRY payload (already shape-checked) inside the running transaction.
    func applyTelemetry(_ payload: UnsafeRawBufferPointer, nowMs: Int64) throws(StoreError) -> CommitOutcome {
        let base = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        let vin = VIN(bytes: UnsafeRawBufferPointer(rebasing: payload[8..<25]))!
        let recordSize = Int(payload[25])
        let count = Int(UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
        let e = try vehicle(vin, nowMs: nowMs)
        let vehicleID = entries[e].id
        let horizon = configuration.horizon
        var outcome = CommitOutcome()
        var highWaterMark = entries[e].highWaterMark
        var latestTs = entries[e].txLatestTs
        var latestIndex = -1
        var minTs = entries[e].txMinTs

        var current: Partition?
        var currentDay = Int64.min
        var chunkFirst: Int64 = 0
        var chunkLast: Int64 = -1
        var chunkMin = Int64.max
        var chunkMax = Int64.min

        for index in 0..<count {
            let start = WireFormat.telemetryHeaderSize + index * recordSize
            let record = TelemetryRecordView(
                bytes: UnsafeRawBufferPointer(rebasing: payload[start..<(start + WireFormat.recordSizeV1)]),
                baseTimeMs: base)
            let ts = record.timestampMs
            guard horizon.contains(ts, nowMs: nowMs) else {
                outcome.rejected += 1
                continue
            }
            let day = UTCDay(epochMs: ts).dayNumber
            if day != currentDay {
                if let current, chunkLast >= chunkFirst {
                    try current.addChunk(
                        vehicleID: vehicleID, tMin: chunkMin, tMax: chunkMax, firstRowID: chunkFirst,
                        rowCount: Int(chunkLast - chunkFirst + 1))
                }
                let next = try partition(day)
                try next.begin()
                try next.ensureVehicle(vehicleID, vin: vin)
                current = next
                currentDay = day
                chunkFirst = 0
                chunkLast = -1
                chunkMin = Int64.max
                chunkMax = Int64.min
                // Opening a partition may have raised the mark (its stored rows).
                highWaterMark = max(highWaterMark, entries[e].highWaterMark)
            }
            let partition = current!
            if ts <= highWaterMark {
                let open: ClosedRange<Int64>? = chunkLast >= chunkFirst ? chunkFirst...chunkLast : nil
                if try partition.contains(vehicleID: vehicleID, timestampMs: ts, openRange: open) {
                    outcome.duplicates += 1
                    continue
                }
            }
            let rowID = try partition.append(record, vehicleID: vehicleID, timestampMs: ts)
            if chunkLast < chunkFirst { chunkFirst = rowID }
            chunkLast = rowID
            if ts < chunkMin { chunkMin = ts }
            if ts > chunkMax { chunkMax = ts }
            if ts > highWaterMark { highWaterMark = ts }
            if ts > latestTs {
                latestTs = ts
                latestIndex = index
            }
            if ts < minTs { minTs = ts }
            outcome.stored += 1
        }
        if let current, chunkLast >= chunkFirst {
            try current.addChunk(
                vehicleID: vehicleID, tMin: chunkMin, tMax: chunkMax, firstRowID: chunkFirst,
                rowCount: Int(chunkLast - chunkFirst + 1))
        }
        entries[e].highWaterMark = highWaterMark
        entries[e].txMinTs = minTs
        if latestIndex >= 0 {
            let start = WireFormat.telemetryHeaderSize + latestIndex * recordSize
            entries[e].txLatest =
                TelemetryRecordView(
                    bytes: UnsafeRawBufferPointer(rebasing: payload[start..<(start + WireFormat.recordSizeV1)]),
                    baseTimeMs: base
                ).record
            entries[e].txLatestTs = latestTs
        }
        entries[e].txStored += outcome.stored
        entries[e].txDuplicates += outcome.duplicates
        entries[e].txRejected += outcome.rejected
        txRows += count
        return outcome
    }

    /// Stores one EVENT payload (already shape-checked): the event and its DTCs in the partition of
    /// its time, the alarm state and active DTCs in the registry. A resent event (same vehicle and
    /// time) is a duplicate.
    func applyEvent(_ p: UnsafeRawBufferPointer, nowMs: Int64) throws(StoreError) -> CommitOutcome {
        guard let registry else { throw StoreError(.stopped, message: "not open", context: "event") }
        let time = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        let vin = VIN(bytes: UnsafeRawBufferPointer(rebasing: p[8..<25]))!
        let level = p[25]
        let flags = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 26, as: UInt32.self))
        let count = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 30, as: UInt16.self)))
        let e = try vehicle(vin, nowMs: nowMs)
        let vehicleID = entries[e].id
        txRows += 1
        if entries[e].unregistered {
            // The alarm update below needs the row now; the commit then updates it.
            try registry.insert(id: vehicleID, vin: vin, nowMs: nowMs)
            entries[e].unregistered = false
        }
        guard configuration.horizon.contains(time, nowMs: nowMs) else {
            entries[e].txRejected += 1
            return CommitOutcome(rejected: 1)
        }
        let partition = try partition(UTCDay(epochMs: time).dayNumber)
        try partition.begin()
        try partition.ensureVehicle(vehicleID, vin: vin)
        let insert = partition.insertEvent
        insert.bind(1, vehicleID)
        insert.bind(2, time)
        insert.bind(3, level == 0xFF ? nil : Int64(level))
        insert.bind(4, Int64(flags))
        insert.bind(5, count)
        try insert.run()
        if partition.db.changes == 0 {
            entries[e].txDuplicates += 1
            return CommitOutcome(duplicates: 1)
        }
        let eventID = partition.db.lastInsertRowID
        for index in 0..<count {
            let offset = WireFormat.eventHeaderSize + index * WireFormat.dtcSize
            let code = Int64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            let source = Int64(p[offset + 4])
            let state = Int64(p[offset + 5])
            partition.insertDTC.bind(1, eventID)
            partition.insertDTC.bind(2, code)
            partition.insertDTC.bind(3, source)
            partition.insertDTC.bind(4, state)
            try partition.insertDTC.run()
            let target = state == 1 ? registry.activateDTC : registry.clearDTC
            target.bind(1, vehicleID)
            target.bind(2, source)
            target.bind(3, code)
            if state == 1 { target.bind(4, time) }
            try target.run()
        }
        let alarm = registry.updateAlarm
        alarm.bind(1, vehicleID)
        alarm.bind(2, level == 0xFF ? nil : Int64(level))
        alarm.bind(3, Int64(flags))
        alarm.bind(4, time)
        alarm.bind(5, nowMs)
        try alarm.run()
        return CommitOutcome(stored: 1)
    }

    // MARK: maintenance

    /// Retention and closing partitions (left the horizon, or idle late-data days); at most once a minute.
    func maintain(nowMs: Int64, force: Bool = false) throws(StoreError) {
        guard force || nowMs - lastMaintenanceMs >= 60_000 else { return }
        lastMaintenanceMs = nowMs
        // Close partitions that left the horizon, and late-data partitions idle for 10 minutes
        // (reopened on demand; reopening only raises high-water marks, never lowers them).
        let today = UTCDay(epochMs: nowMs).dayNumber
        let monotonicNow = StoreClock.monotonicNs()
        for (dayNumber, partition) in partitions where !partition.inTransaction {
            if !isWithinHorizon(partition.day, nowMs: nowMs)
                || (abs(dayNumber - today) > 1 && monotonicNow - partition.lastUsedNs > 600_000_000_000)
            {
                // Closed only once its WAL is fully in the database file (and so fsynced): the
                // durability rounds see open files only.
                let (log, done) = try partition.db.checkpoint(truncate: true)
                if done >= log { partitions[dayNumber] = nil }
            }
        }
        try removeExpiredPartitions(nowMs: nowMs)
    }

    /// Deletes partition files whose whole day is older than the retention period.
    private func removeExpiredPartitions(nowMs: Int64) throws(StoreError) {
        let retentionDays = configuration.retentionDays(for: region)
        for day in ShardStore.expiredPartitionDays(in: directory, retentionDays: retentionDays, nowMs: nowMs) {
            partitions[day.dayNumber] = nil
            try StoreFiles.deleteDatabase("\(directory)/\(day.partitionFileName)")
            configuration.log(
                .info, "\(region): retention removed partition \(day) (older than \(retentionDays) days)")
        }
    }

    /// Checkpoints every open file whose WAL grew by `checkpointPages` since its last checkpoint
    /// (PASSIVE: never waits for readers), and truncates a WAL that outgrew `walTruncateBytes` (readers
    /// holding old snapshots kept it from restarting; TRUNCATE without waiting: BUSY means "after the
    /// next commit"). The writer calls it after delivering a transaction's completions, so no ACK waits
    /// for a checkpoint (SQLite's automatic checkpoint would run inside the COMMIT that crosses the
    /// threshold). The WAL's size comes from the WAL hook's page count, not from the file system.
    func checkpointLargeWALs() throws(StoreError) {
        for partition in partitions.values { try checkpointIfLarge(partition.db) }
        if let registry { try checkpointIfLarge(registry.db) }
    }

    static let checkpointPages: Int32 = 1000

    private func checkpointIfLarge(_ db: SQLiteConnection) throws(StoreError) {
        let pages = db.walPages
        // Fewer pages than last time: the WAL restarted from its beginning after a checkpoint.
        if pages < db.lastSeenWALPages { db.nextCheckpointPages = Self.checkpointPages }
        db.lastSeenWALPages = pages
        if Int(pages) * db.walFrameBytes > configuration.walTruncateBytes {
            sqlite3_busy_timeout(db.handle, 0)
            defer { sqlite3_busy_timeout(db.handle, configuration.busyTimeoutMs) }
            try db.checkpoint(truncate: true)
            return
        }
        guard pages >= db.nextCheckpointPages else { return }
        let (log, _) = try db.checkpoint(truncate: false)
        // Readers holding old snapshots can keep the WAL from restarting: try again once it grew
        // by another `checkpointPages` (and truncate it past walTruncateBytes, above).
        db.nextCheckpointPages = max(log, pages) + Self.checkpointPages
    }

    /// Checkpoints every open file (TRUNCATE), used at a clean stop.
    func checkpointAll() {
        for partition in partitions.values { _ = try? partition.db.checkpoint(truncate: true) }
        if let registry { _ = try? registry.db.checkpoint(truncate: true) }
    }
}
