import HorgosGBT32960
import HorgosWire

extension RegionEngine {
    /// Applies one GB/T 32960 entry (`GBT32960Entry`: a realtime or reissue frame and its time
    /// base) to the running transaction: one `telemetry` row in the day partition of its collection
    /// time (the fields Horgos's record has, `GBT32960Mapping`), the typed rows of the rest, and the
    /// registry's latest state at commit.
    ///
    /// (VIN, collection time) is unique: a frame whose sample is already stored is a duplicate
    /// (answered with success); its cell and probe lists are still written where they are new, for
    /// units that split a long cell list over several frames of one time. An entry that does not
    /// decode (never after the listener's checks) or lies outside the horizon is counted rejected.
    /// This is the journal's applier for entry kind 3.
    func applyGBT32960(_ entry: UnsafeRawBufferPointer, nowMs: Int64) throws(StoreError) -> CommitOutcome {
        txRows += 1
        guard let decoded = GBT32960Entry.decode(entry) else {
            configuration.log(.warning, "\(region): a GB/T 32960 entry that does not decode was not stored")
            return CommitOutcome(rejected: 1)
        }
        let ts = decoded.timestampMs
        let e = try vehicle(decoded.vin, nowMs: nowMs)
        guard configuration.horizon.contains(ts, nowMs: nowMs) else {
            entries[e].txRejected += 1
            return CommitOutcome(rejected: 1)
        }
        let vehicleID = entries[e].id
        let partition = try partition(UTCDay(epochMs: ts).dayNumber)
        try partition.begin()
        try partition.ensureVehicle(vehicleID, vin: decoded.vin)
        let tables = try partition.gbt32960Tables()
        let report = decoded.report
        if ts <= entries[e].highWaterMark,
            try partition.contains(vehicleID: vehicleID, timestampMs: ts, openRange: nil)
        {
            try tables.insertLists(report, vehicleID: vehicleID, ts: ts)
            entries[e].txDuplicates += 1
            return CommitOutcome(duplicates: 1)
        }
        let record = GBT32960Mapping.record(report)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(WireFormat.recordSizeV1)
        FrameEncoder.appendRecord(record, to: &bytes)
        let appended = bytes.withUnsafeBytes { raw -> Result<Int64, StoreError> in
            do throws(StoreError) {
                let view = TelemetryRecordView(bytes: raw, baseTimeMs: ts)
                return .success(try partition.append(view, vehicleID: vehicleID, timestampMs: ts))
            } catch {
                return .failure(error)
            }
        }
        let rowID = try appended.get()
        try partition.addChunk(vehicleID: vehicleID, tMin: ts, tMax: ts, firstRowID: rowID, rowCount: 1)
        try tables.insertDetails(report, command: decoded.header.command, vehicleID: vehicleID, ts: ts)
        try tables.insertLists(report, vehicleID: vehicleID, ts: ts)
        if ts > entries[e].highWaterMark { entries[e].highWaterMark = ts }
        if ts < entries[e].txMinTs { entries[e].txMinTs = ts }
        if ts > entries[e].txLatestTs {
            entries[e].txLatestTs = ts
            entries[e].txLatest = record
        }
        entries[e].txStored += 1
        return CommitOutcome(stored: 1)
    }
}
