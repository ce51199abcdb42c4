import Dispatch
import Foundation
import HorgosTestSupport
import HorgosWire
import Synchronization
import Testing

@testable import HorgosStore

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let now: Mutex<Int64>
    init(_ ms: Int64) { now = Mutex(ms) }
    var ms: Int64 {
        get { now.withLock { $0 } }
        set { now.withLock { $0 = newValue } }
    }
    var function: @Sendable () -> Int64 { { [self] in self.ms } }
}

/// Collects log lines.
final class LogSink: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var function: @Sendable (StoreLogLevel, String) -> Void {
        { [self] level, message in self.lines.withLock { $0.append("\(level.rawValue) \(message)") } }
    }
}

/// A fresh, empty directory under the temporary directory; removed by `cleanup()`.
struct TempDirectory {
    let path: String
    init(_ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "horgos-store-\(safe)-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.removeItem(atPath: path)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

let ae = Region("AE")!
let br = Region("BR")!
/// 2026-11-29 12:00:00 UTC.
let noon: Int64 = UTCDay(year: 2026, month: 11, day: 29).startMs + 12 * 3_600_000

func testVIN(_ index: Int) -> VIN {
    let digits = String(index)
    return VIN("LSVTEST" + String(repeating: "0", count: 10 - digits.count) + digits)!
}

/// The TELEMETRY payload (no frame header/trailer) of `records` for `vin`.
func telemetryPayload(vin: VIN, baseTimeMs: Int64, records: [TelemetryRecord]) -> [UInt8] {
    var frame: [UInt8] = []
    FrameEncoder.appendTelemetry(vin: vin, baseTimeMs: baseTimeMs, records: records, sequence: 1, to: &frame)
    let payload = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
    // The daemon validates before submitting; so do the tests.
    _ = try! payload.withUnsafeBytes { try TelemetryBatchView(payload: $0) }
    return payload
}

func eventPayload(vin: VIN, timeMs: Int64, level: UInt8, flags: UInt32, dtcs: [DiagnosticTroubleCode]) -> [UInt8] {
    var frame: [UInt8] = []
    FrameEncoder.appendEvent(
        vin: vin, timeMs: timeMs, maxAlarmLevel: level, alarmFlags: flags, dtcs: dtcs, sequence: 1, to: &frame)
    return Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
}

/// Records one second apart with simple, distinct values.
func simpleRecords(_ count: Int, startOffsetMs: UInt32 = 0, soc: UInt8 = 50) -> [TelemetryRecord] {
    (0..<count).map { index in
        TelemetryRecord(
            timeOffsetMs: startOffsetMs + UInt32(index * 1000), latitudeE7: 250_000_000 + Int32(index),
            longitudeE7: 550_000_000, odometerHm: 1000 + UInt32(index), speedDkmh: UInt16(index), soc: soc,
            maxCellTemp: 30, minCellTemp: 25, maxAlarmLevel: 0, status: 0x9)
    }
}

/// Values delivered to a callback (commit outcomes, erasure reports), waitable with a timeout without
/// blocking the cooperative pool.
final class Arrivals<Value: Sendable>: Sendable {
    private let state = Mutex<(values: [Value], waitedFor: Int)>(([], 0))
    var count: Int { state.withLock { $0.values.count } }
    var all: [Value] { state.withLock { $0.values } }
    var callback: @Sendable (Value) -> Void {
        { [self] value in self.state.withLock { $0.values.append(value) } }
    }
    /// Waits for `n` more values, like `n` waits on a semaphore the callback signals: the values an earlier
    /// wait took are not counted again, and a wait that times out takes those that had arrived. False on
    /// timeout.
    func wait(for n: Int, seconds: Double = 20) async -> Bool {
        let target = state.withLock { state in
            state.waitedFor += n
            return state.waitedFor
        }
        if await eventually(seconds: seconds, { count >= target }) { return true }
        state.withLock { $0.waitedFor = min(target, $0.values.count) }
        return false
    }

    /// The next value (one past what earlier waits took), nil after `seconds` without one.
    func next(seconds: Double = 20) async -> Value? {
        let index = state.withLock { $0.waitedFor }
        return await wait(for: 1, seconds: seconds) ? all[index] : nil
    }
}

/// Commit outcomes delivered to completions.
typealias Completions = Arrivals<CommitOutcome>

extension Arrivals where Value == CommitOutcome {
    var outcomes: [CommitOutcome] { all }
}

extension RegionWriter {
    /// Submits, waits for the acknowledgement and then for the applier; returns what the applier did
    /// (stored, duplicates, rejected: from the statistics' change), nil on timeout. Submissions
    /// must not overlap on one region while this runs.
    func storeTelemetry(_ payload: [UInt8], seconds: Double = 20) async throws -> CommitOutcome? {
        try await stored(seconds: seconds) { try submitTelemetry(payload, completion: $0) }
    }

    func storeEvent(_ payload: [UInt8], seconds: Double = 20) async throws -> CommitOutcome? {
        try await stored(seconds: seconds) { try submitEvent(payload, completion: $0) }
    }

    func stored(
        seconds: Double, _ submit: (@escaping @Sendable (CommitOutcome) -> Void) throws -> Void
    ) async throws -> CommitOutcome? {
        let before = statistics
        let done = Completions()
        try submit(done.callback)
        guard await done.wait(for: 1, seconds: seconds), await waitUntilApplied(seconds: seconds) else { return nil }
        let after = statistics
        return CommitOutcome(
            stored: after.recordsStored - before.recordsStored + after.eventsStored - before.eventsStored,
            duplicates: after.recordsDuplicate - before.recordsDuplicate,
            rejected: after.recordsRejected - before.recordsRejected)
    }

    /// Waits until every acknowledged entry of the region is applied to its shards (and counted).
    func waitUntilApplied(seconds: Double = 20) async -> Bool {
        await eventually(seconds: seconds) { statistics.unappliedEntries == 0 }
    }

    /// Polls until `predicate(state)` or the timeout.
    func waitForState(seconds: Double = 20, _ predicate: (RegionWriterState) -> Bool) async -> Bool {
        await eventually(seconds: seconds) { predicate(state) }
    }
}

func makeConfiguration(
    _ dir: TempDirectory, regions: [Region] = [ae], clock: TestClock, log: LogSink = LogSink(),
    durability: Durability = .disk
) -> StoreConfiguration {
    StoreConfiguration(
        stateDirectory: dir.path, regions: regions, durability: durability, applyIntervalMs: 5, busyTimeoutMs: 50,
        retryDelayMs: 20, maxRetryDelayMs: 200, journalSegmentBytes: 1 << 20, journalMaxBytes: 64 << 20,
        appliers: 2, durabilityIntervalMs: 200, journalReserveBytes: 1 << 20, clock: clock.function,
        log: log.function, createdBy: "horgos-tests")
}

/// Runs one SQL query on a file and returns the first column of every row as text.
func query(_ path: String, _ sql: String) throws -> [String] {
    let db = try SQLiteConnection(path: path, readOnly: true)
    let stmt = try db.prepare(sql)
    var rows: [String] = []
    while try stmt.step() { rows.append(stmt.text(0)) }
    return rows
}
