import HorgosWire

/// What erasures did in the running transaction, and the files whose old bytes must still leave.
struct ErasureState {
    /// One report per erase entry applied in the running transaction, in LSN order.
    var reports: [EraseReport] = []
    /// Day files opened only to be erased (outside the days the writer keeps open): closed after the commit.
    var openedDays: Set<Int64> = []
    /// Day files that lost rows: checkpointed with TRUNCATE after the commit, so their WAL holds no older
    /// page images; a file a reader keeps from truncating stays here and is tried again each turn.
    var daysToScrub: Set<Int64> = []
    /// The registry lost a row: its WAL waits for a TRUNCATE checkpoint (tried again while a reader holds it).
    var scrubRegistry = false
}

extension RegionEngine {
    /// Applies an erasure tombstone (journal entry kind 4) inside the running transaction: every day file
    /// of the region (open or not, native and GB/T 32960 tables), then the registry row and active DTCs,
    /// and the writer's memory of the vehicle (a frame of it after the tombstone registers it anew, with
    /// a new id). Rows of the vehicle written earlier in the same transaction go too: the applier applies
    /// entries in LSN order. Idempotent: applied again (a replay), it finds nothing and removes nothing.
    func applyErase(_ payload: UnsafeRawBufferPointer, nowMs: Int64) throws(StoreError) -> CommitOutcome {
        guard let registry else { throw StoreError(.stopped, message: "not open", context: "erase \(region)") }
        let vin = VIN(bytes: payload)!
        txRows += 1
        var report = EraseReport(region: region.code, vin: vin.description)
        for day in StoreFiles.partitionDays(in: directory) {
            let wasOpen = partitions[day.dayNumber] != nil
            let partition = try partition(day.dayNumber)
            if !wasOpen { erasures.openedDays.insert(day.dayNumber) }
            try partition.begin()
            let removed = try partition.erase(vin)
            guard !removed.isEmpty else { continue }
            report.files.append(EraseReport.File(name: day.partitionFileName, rows: removed))
            erasures.daysToScrub.insert(day.dayNumber)
        }
        let fromRegistry = try registry.erase(vin)
        if !fromRegistry.isEmpty {
            report.files.append(EraseReport.File(name: StoreFiles.registryFileName, rows: fromRegistry))
            erasures.scrubRegistry = true
        }
        if let index = vehicleIndex[vin] {
            // Forget the vehicle: its id, high-water mark and whatever this transaction gathered for it.
            indexByID[entries[index].id] = nil
            let id = nextVehicleID
            nextVehicleID += 1
            entries[index] = VehicleEntry(id: id, vin: vin)
            entries[index].unregistered = true
            indexByID[id] = index
            touched.removeAll { $0 == index }
        }
        erasures.reports.append(report)
        return CommitOutcome()
    }

    /// After the commit of a transaction that erased: makes the erased bytes leave the files (the deletes
    /// zeroed them in the database pages, `secure_delete`; TRUNCATE checkpoints empty the WALs, which
    /// still hold the older page images), closes the day files opened only for the erasure, and returns
    /// the transaction's reports in LSN order. Never throws: the rows are already gone; a file a reader
    /// keeps busy is tried again by `scrubErasedFiles()` at the applier's next turns (and a closed file's
    /// WAL goes at its close).
    func finishErasures(nowMs: Int64) -> [EraseReport] {
        let reports = erasures.reports
        erasures.reports = []
        scrubErasedFiles()
        for dayNumber in erasures.openedDays {
            guard let partition = partitions[dayNumber], !partition.inTransaction else { continue }
            if abs(dayNumber - UTCDay(epochMs: nowMs).dayNumber) > 1 {
                erasures.daysToScrub.remove(dayNumber)
                // The last connection's close checkpoints the WAL and deletes it.
                partitions[dayNumber] = nil
            }
        }
        erasures.openedDays = []
        return reports
    }

    /// Tries the TRUNCATE checkpoints erasures still wait for (a reader may hold an old snapshot).
    func scrubErasedFiles() {
        for dayNumber in erasures.daysToScrub {
            guard let partition = partitions[dayNumber] else {
                erasures.daysToScrub.remove(dayNumber)
                continue
            }
            if partition.db.checkpointTruncated() { erasures.daysToScrub.remove(dayNumber) }
        }
        if erasures.scrubRegistry, let registry, registry.db.checkpointTruncated() {
            erasures.scrubRegistry = false
        }
    }

    /// True while an erasure's files still wait for their WAL to be truncated.
    var erasuresAwaitScrub: Bool { !erasures.daysToScrub.isEmpty || erasures.scrubRegistry }
}
