// The store benchmark (issue 3, item 9). Run it with:
//
//   swift run -c release --scratch-path .build-release horgos-bench-store [records] [vehicles]
//
// (a) a bare CSQLite loop appending the same rows, same columns and pragmas, no index, one file:
//     the machine's limit for this schema;
// (b) HorgosStore ingesting `records` (default 2,000,000) from `vehicles` (default 50,000) vehicles
//     over the 41 default regions, through the real writers, chunk index and registry;
// (c) on a one-region store of 50,000 vehicles: fleet health and a one-day track of one vehicle.
// (e) resends: one vehicle with a day at 1 record/s (1,728 frames of 50), then the last 64 frames
//     again (a lost ACK window) and 64 frames again from the start of the day: dedup lookups per record.
// (d) paced ingest at a steady rate (HORGOS_BENCH_RATE rows/s, default 100,000) over the 41 regions:
//     the ACK latency a vehicle sees (submit to completion) and the transactions it takes.
// (a), (b) and (d) run for both durability modes. Files go under $TMPDIR (default /tmp).
// (f) vehicle mode: 1-record submissions from 10,000 vehicles at 1 record/s each, per apply interval:
//     ACK latency (journal round), bytes written to disk per record (/proc/self/io), fdatasyncs per second.
// (g) GB/T 32960 frames through the writer beside native 1-record frames, and the cell-list layout.
// HORGOS_BENCH_PARTS selects parts (default "abcde"), HORGOS_BENCH_REPEAT repeats (a)/(b) and keeps the best.
import CSQLite
import Dispatch
import HorgosBenchSupport
import Foundation
import HorgosStore
import HorgosWire
import Synchronization

_ = horgos_sqlite3_config_memstatus(0)
let arguments = CommandLine.arguments
let totalRecords = arguments.count > 1 ? Int(arguments[1]) ?? 2_000_000 : 2_000_000
let vehicleCount = arguments.count > 2 ? Int(arguments[2]) ?? 50_000 : 50_000
let root = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/horgos-bench-store-\(getpid())"
let nowMs = StoreClock.systemMs()

/// CPU seconds used by the whole process so far (all threads, user + system).
func processCPU() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func vin(_ index: Int) -> VIN {
    let digits = String(index)
    return VIN("LBENCH" + String(repeating: "0", count: 11 - digits.count) + digits)!
}

/// A TELEMETRY payload (no header/trailer) of `count` records one `stepMs` apart.
func payload(vehicle: Int, baseMs: Int64, count: Int, stepMs: Int) -> [UInt8] {
    var frame: [UInt8] = []
    let records = (0..<count).map { i in
        TelemetryRecord(
            timeOffsetMs: UInt32(i * stepMs), latitudeE7: 250_000_000 + Int32(vehicle % 1000) * 1000 + Int32(i),
            longitudeE7: 550_000_000 - Int32(i), odometerHm: UInt32(100_000 + vehicle + i),
            speedDkmh: UInt16((vehicle + i) % 1200), headingCdeg: UInt16((i * 100) % 36000),
            packVoltageDv: 3_800, packCurrentDa: Int16(i % 300) - 100, soc: UInt8(vehicle % 101),
            maxCellTemp: Int8(25 + vehicle % 40), minCellTemp: 20, maxAlarmLevel: vehicle % 97 == 0 ? 2 : 0,
            status: 0x49, auxBatteryCv: 1_270, alarmFlags: vehicle % 97 == 0 ? 0x2 : 0, remainingRangeKm: 300)
    }
    FrameEncoder.appendTelemetry(vin: vin(vehicle), baseTimeMs: baseMs, records: records, sequence: 1, to: &frame)
    return Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
}

struct Frame {
    let vehicle: Int
    let bytes: [UInt8]
    let records: Int
}

/// The fleet's frames in arrival order: half the vehicles behind gateways (50-record frames), half
/// TBoxes sending 10-record frames; 40 records per vehicle on average, 1 record/s, interleaved.
func fleetFrames() -> [Frame] {
    var frames: [Frame] = []
    let perVehicle = max(1, totalRecords / vehicleCount)
    let start = nowMs - 2 * 3_600_000
    // Round r: every vehicle sends its r-th frame; gateway vehicles send fewer, larger frames.
    var produced = 0
    var round = 0
    while produced < totalRecords {
        for vehicle in 0..<vehicleCount where produced < totalRecords {
            let size = vehicle % 2 == 0 ? 50 : 10
            let sent = round * size
            let quota = vehicle % 2 == 0 ? perVehicle + perVehicle / 4 : perVehicle - perVehicle / 4
            guard sent < quota else { continue }
            let count = min(size, quota - sent, totalRecords - produced)
            frames.append(
                Frame(
                    vehicle: vehicle,
                    bytes: payload(
                        vehicle: vehicle, baseMs: start + Int64(sent) * 1000,
                        count: count, stepMs: 1000), records: count))
            produced += count
        }
        round += 1
        if round > 100_000 { break }
    }
    return frames
}

/// One record per vehicle, before the fleet's frames on the same day: registers every vehicle.
func warmUpFrames() -> [Frame] {
    (0..<vehicleCount).map { vehicle in
        Frame(
            vehicle: vehicle, bytes: payload(vehicle: vehicle, baseMs: nowMs - 3 * 3_600_000, count: 1, stepMs: 1000),
            records: 1)
    }
}

func directorySize(_ path: String) -> Int64 {
    let files = (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? []
    return files.reduce(0) { sum, name in
        let attributes = try? FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")
        return sum + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
    }
}

// MARK: (a) bare append loop

func bareAppend(_ frames: [Frame], durability: Durability) -> (
    rowsPerSecond: Double, bytesPerRow: Double, rowsPerCPUSecond: Double
) {
    let dir = "\(root)/bare-\(durability.rawValue)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let appender = BareAppender(path: "\(dir)/bare.sqlite", fsync: durability == .disk)
    let started = monotonic()
    let cpuStarted = processCPU()
    for frame in frames {
        frame.bytes.withUnsafeBytes { appender.append(telemetryPayload: $0, vehicleID: Int64(frame.vehicle + 1)) }
    }
    appender.commit()
    let elapsed = monotonic() - started
    let cpu = processCPU() - cpuStarted
    let rows = appender.rows
    appender.close()
    let bytes = directorySize(dir)
    try? FileManager.default.removeItem(atPath: dir)
    return (Double(rows) / elapsed, Double(bytes) / Double(rows), Double(rows) / cpu)
}

// MARK: (b) the store

/// Submits `frames` and waits for all completions; the completions count in an atomic and wake the
/// waiting thread once, so the harness adds no context switch per frame.
func submitAll(_ frames: [Frame], to writers: [RegionWriter]) {
    let remaining = Atomic<Int>(frames.count)
    let done = DispatchSemaphore(value: 0)
    for frame in frames {
        try! writers[frame.vehicle % writers.count].submitTelemetry(frame.bytes) { _ in
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.signal() }
        }
    }
    done.wait()
}

/// Ingests `frames`; with `warmUp`, first ingests those (untimed) so the vehicles are already known
/// (registry and partition rows exist), as in a running deployment.
func storeIngest(
    _ frames: [Frame], regions: [Region], durability: Durability, keep: Bool = false, warmUp: [Frame] = []
)
    -> (
        rowsPerSecond: Double, bytesPerRow: Double, directory: String, commits: Int, p50: String,
        rowsPerCPUSecond: Double
    )
{
    let dir = "\(root)/store-\(durability.rawValue)-\(regions.count)"
    let store = try! ShardStore(
        configuration: StoreConfiguration(stateDirectory: dir, regions: regions, durability: durability))
    let writers = regions.map { store.writers[$0]! }
    if !warmUp.isEmpty { submitAll(warmUp, to: writers) }
    let commitsBefore = writers.reduce(0) { $0 + $1.statistics.commits }
    let started = monotonic()
    let cpuStarted = processCPU()
    submitAll(frames, to: writers)
    let elapsed = monotonic() - started
    let cpu = processCPU() - cpuStarted
    var commits = -commitsBefore
    var buckets = [Int](repeating: 0, count: RegionWriterStatistics.commitLatencyBucketsUs.count + 1)
    for writer in writers {
        let stats = writer.statistics
        commits += stats.commits
        for (i, c) in stats.commitLatencyCounts.enumerated() { buckets[i] += c }
    }
    store.stop()
    let rows = frames.reduce(0) { $0 + $1.records }
    let bytes = directorySize(dir)
    if !keep { try? FileManager.default.removeItem(atPath: dir) }
    // Median commit latency bucket.
    var seen = 0
    var median = ">1s"
    for (i, c) in buckets.enumerated() {
        seen += c
        if seen * 2 >= commits {
            median =
                i < RegionWriterStatistics.commitLatencyBucketsUs.count
                ? "<=\(RegionWriterStatistics.commitLatencyBucketsUs[i]) us" : ">1s"
            break
        }
    }
    return (Double(rows) / elapsed, Double(bytes) / Double(rows), dir, commits, median, Double(rows) / cpu)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// p50, p99 and max of latencies given in seconds, in milliseconds.
func latencySummary(_ seconds: [Double]) -> (p50: Double, p99: Double, max: Double) {
    let sorted = seconds.sorted()
    func pct(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
    return (pct(0.5), pct(0.99), sorted.last! * 1000)
}

/// CPU time of the calling thread in seconds (the machine is shared: wall time includes waiting for a core).
func threadCPU() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

print("horgos-bench-store: \(totalRecords) records, \(vehicleCount) vehicles, 41 regions; files under \(root)")
print("SQLite \(String(cString: sqlite3_libversion())), \(ProcessInfo.processInfo.activeProcessorCount) cores")
let frames = fleetFrames()
let gatewayFrames = frames.filter { $0.records > 10 }.count
print("frames: \(frames.count) (\(gatewayFrames) of up to 50 records, \(frames.count - gatewayFrames) of up to 10)")

let parts = ProcessInfo.processInfo.environment["HORGOS_BENCH_PARTS"] ?? "abcde"
let keepFiles = ProcessInfo.processInfo.environment["HORGOS_BENCH_KEEP"] != nil
let repeats = Int(ProcessInfo.processInfo.environment["HORGOS_BENCH_REPEAT"] ?? "1") ?? 1
for durability in [Durability.disk, .process] where parts.contains("a") || parts.contains("b") {
    // Best of `repeats` (the machine is shared; the best run is the least disturbed one), a and b alternating.
    var a = (rowsPerSecond: 0.0, bytesPerRow: 0.0, rowsPerCPUSecond: 0.0)
    var b = (rowsPerSecond: 0.0, bytesPerRow: 0.0, directory: "", commits: 0, p50: "", rowsPerCPUSecond: 0.0)
    for _ in 0..<repeats {
        let ra = bareAppend(frames, durability: durability)
        if ra.rowsPerSecond > a.rowsPerSecond { a = ra }
        let rb = storeIngest(frames, regions: Region.defaultSet, durability: durability)
        if rb.rowsPerSecond > b.rowsPerSecond { b = rb }
    }
    print(
        String(
            format: "durability=%@  (a) bare append: %.0f rows/s, %.0f rows per CPU-second, %.1f bytes/row",
            durability.rawValue, a.rowsPerSecond, a.rowsPerCPUSecond, a.bytesPerRow))
    print(
        String(
            format:
                "durability=%@  (b) HorgosStore:  %.0f rows/s, %.0f rows per CPU-second, %.1f bytes/row, "
                + "%d transactions, median transaction %@",
            durability.rawValue, b.rowsPerSecond, b.rowsPerCPUSecond, b.bytesPerRow, b.commits, b.p50))
    // The same frames with every vehicle already known (a running deployment: vehicles register once).
    var bw = (rowsPerSecond: 0.0, bytesPerRow: 0.0, directory: "", commits: 0, p50: "", rowsPerCPUSecond: 0.0)
    let warm = warmUpFrames()
    for _ in 0..<repeats {
        let r = storeIngest(frames, regions: Region.defaultSet, durability: durability, warmUp: warm)
        if r.rowsPerSecond > bw.rowsPerSecond { bw = r }
    }
    print(
        String(
            format: "durability=%@  (b warm) HorgosStore, vehicles already registered: %.0f rows/s, "
                + "%.0f rows per CPU-second, b/a = %.2f",
            durability.rawValue, bw.rowsPerSecond, bw.rowsPerCPUSecond, bw.rowsPerSecond / a.rowsPerSecond))
    // The same frames through ONE region (one writer thread, like (a)): the per-core comparison.
    var b1 = (rowsPerSecond: 0.0, bytesPerRow: 0.0, directory: "", commits: 0, p50: "", rowsPerCPUSecond: 0.0)
    for _ in 0..<repeats {
        let r = storeIngest(frames, regions: [Region("AE")!], durability: durability)
        if r.rowsPerSecond > b1.rowsPerSecond { b1 = r }
    }
    print(
        String(
            format: "durability=%@  (b1) HorgosStore, all vehicles in one region (one writer thread): %.0f rows/s, "
                + "%.0f rows per CPU-second, b1/a = %.2f",
            durability.rawValue, b1.rowsPerSecond, b1.rowsPerCPUSecond, b1.rowsPerSecond / a.rowsPerSecond))
    print(
        String(
            format: "durability=%@  b/a = %.2f (rows/s), %.2f (rows per CPU-second)", durability.rawValue,
            b.rowsPerSecond / a.rowsPerSecond, b.rowsPerCPUSecond / a.rowsPerCPUSecond))
}

// MARK: (c) queries on a 50,000-vehicle region

if parts.contains("c") {
    let region = Region("AE")!
    // Every vehicle: one 10-record frame; vehicle 0: a whole day at one record per 10 s (8,640 records in
    // 50-record frames), its frames interleaved with everybody else's.
    var regionFrames: [Frame] = []
    let dayStart = nowMs - 86_400_000
    var tracked: [Frame] = []
    for k in 0..<173 {
        let count: Int = min(50, 8640 - k * 50)
        let base: Int64 = dayStart + Int64(k * 50) * 10_000
        tracked.append(
            Frame(vehicle: 0, bytes: payload(vehicle: 0, baseMs: base, count: count, stepMs: 10_000), records: count))
    }
    for vehicle in 1...vehicleCount {
        regionFrames.append(
            Frame(
                vehicle: vehicle,
                bytes: payload(
                    vehicle: vehicle, baseMs: dayStart + Int64(vehicle) * 1000,
                    count: 10, stepMs: 1000), records: 10))
        if vehicle % 290 == 0, vehicle / 290 - 1 < tracked.count { regionFrames.append(tracked[vehicle / 290 - 1]) }
    }
    regionFrames.append(contentsOf: tracked.suffix(max(0, tracked.count - vehicleCount / 290)))
    let trackedRecords = tracked.reduce(0) { $0 + $1.records }
    // Route everything to AE: vehicle % 1 == 0.
    let result = storeIngest(regionFrames, regions: [region], durability: .disk, keep: true)
    let reader = ShardReader(stateDirectory: result.directory, region: region)
    var healthTimes: [Double] = []
    var healthCPU: [Double] = []
    var health: FleetHealth?
    for _ in 0..<20 {
        let t0 = monotonic()
        let c0 = threadCPU()
        health = try reader.fleetHealth()
        healthCPU.append((threadCPU() - c0) * 1000)
        healthTimes.append((monotonic() - t0) * 1000)
    }
    var trackTimes: [Double] = []
    var trackCPU: [Double] = []
    var points = 0
    for _ in 0..<20 {
        let t0 = monotonic()
        let c0 = threadCPU()
        points = try reader.track(vin(0), fromMs: dayStart, toMs: nowMs).count
        trackCPU.append((threadCPU() - c0) * 1000)
        trackTimes.append((monotonic() - t0) * 1000)
    }
    print(
        String(
            format: "(c) region of %d vehicles (%d rows, one writer: ingest %.0f rows/s, %.0f rows per CPU-second)",
            health!.vehiclesTotal, regionFrames.reduce(0) { $0 + $1.records }, result.rowsPerSecond,
            result.rowsPerCPUSecond))
    print(
        String(
            format:
                "(c) fleet health: median %.2f ms, min %.2f ms, max %.2f ms, median CPU %.2f ms "
                + "(vehicles %d, reporting 1h %d, alarms %d, avg SOC %.1f)",
            median(healthTimes), healthTimes.min()!, healthTimes.max()!, median(healthCPU), health!.vehiclesTotal,
            health!.reportingLastHour, health!.withActiveAlarms, health!.averageSOC ?? 0))
    print(
        String(
            format:
                "(c) one-day track of one vehicle: median %.2f ms, min %.2f ms, max %.2f ms, median CPU %.2f ms "
                + "(%d points of %d stored)",
            median(trackTimes), trackTimes.min()!, trackTimes.max()!, median(trackCPU), points, trackedRecords))
    if !keepFiles { try? FileManager.default.removeItem(atPath: result.directory) }
}
// MARK: (d) paced ingest: ACK latency

if parts.contains("d") {
    let rate = Double(ProcessInfo.processInfo.environment["HORGOS_BENCH_RATE"] ?? "100000") ?? 100_000
    for durability in [Durability.disk, .process] {
        let dir = "\(root)/paced-\(durability.rawValue)"
        let store = try ShardStore(
            configuration: StoreConfiguration(stateDirectory: dir, regions: Region.defaultSet, durability: durability))
        let writers = Region.defaultSet.map { store.writers[$0]! }
        let latencies = Mutex<[Double]>([])
        let done = DispatchSemaphore(value: 0)
        let paced = frames.prefix { _ in true }
        var sentRows = 0
        var sentFrames = 0
        let limitRows = Int(rate * 5)
        let started = monotonic()
        for frame in paced where sentRows < limitRows {
            let due = started + Double(sentRows) / rate
            let wait = due - monotonic()
            if wait > 0 { usleep(UInt32(wait * 1e6)) }
            let submitted = monotonic()
            try writers[frame.vehicle % writers.count].submitTelemetry(frame.bytes) { _ in
                let latency = monotonic() - submitted
                latencies.withLock { $0.append(latency) }
                done.signal()
            }
            sentRows += frame.records
            sentFrames += 1
        }
        for _ in 0..<sentFrames { done.wait() }
        let elapsed = monotonic() - started
        let transactions = writers.reduce(0) { $0 + $1.statistics.commits }
        store.stop()
        try? FileManager.default.removeItem(atPath: dir)
        let ack = latencySummary(latencies.withLock { $0 })
        print(
            String(
                format: "durability=%@  (d) paced %.0f rows/s for %.1f s: ACK latency p50 %.1f ms, p99 %.1f ms, "
                    + "max %.1f ms; %d transactions (%.0f rows each)",
                durability.rawValue, Double(sentRows) / elapsed, elapsed, ack.p50, ack.p99, ack.max,
                transactions, Double(sentRows) / Double(max(1, transactions))))
    }
}
// MARK: (e) resends

if parts.contains("e") {
    let dir = "\(root)/resend"
    let store = try ShardStore(configuration: StoreConfiguration(stateDirectory: dir, regions: [Region("AE")!]))
    let writer = store.writers[Region("AE")!]!
    let dayStart = nowMs - 86_400_000
    let day = (0..<1728).map { k in
        Frame(
            vehicle: 7, bytes: payload(vehicle: 7, baseMs: dayStart + Int64(k * 50) * 1000, count: 50, stepMs: 1000),
            records: 50)
    }
    submitAll(day, to: [writer])
    for (name, frames) in [
        ("last 64 frames of the day", Array(day.suffix(64))), ("first 64 frames of the day", Array(day.prefix(64))),
    ] {
        let before = writer.statistics.recordsDuplicate
        let t0 = monotonic()
        let c0 = processCPU()
        submitAll(frames, to: [writer])
        let cpu = processCPU() - c0
        let elapsed = monotonic() - t0
        let duplicates = writer.statistics.recordsDuplicate - before
        print(
            String(
                format: "(e) resend of the %@ (3,200 records, 1,728 chunks that day): %.1f ms, %.1f ms CPU, "
                    + "%.1f us CPU per record, %d duplicates",
                name, elapsed * 1000, cpu * 1000, cpu * 1e6 / 3200, duplicates))
    }
    store.stop()
    try? FileManager.default.removeItem(atPath: dir)
}
// MARK: (f) vehicle mode: one record per submission at a fleet's pace

// Issue 7's scenario B without the network: HORGOS_BENCH_VEHICLES (default 10,000) vehicles over the
// 41 regions each submit one 1-record payload per second (HORGOS_BENCH_SECONDS, default 10), with
// durability = disk, once per apply interval in HORGOS_BENCH_INTERVALS (ms, default "500"). It prints
// the ACK latency (submit to completion: the journal round), the apply transactions, the process CPU
// per record, the bytes written to disk per record (journal + shards + checkpoints, up to the store's
// stop) and the journal's fdatasyncs per second.
if parts.contains("f") {
    let environment = ProcessInfo.processInfo.environment
    let vehicles = Int(environment["HORGOS_BENCH_VEHICLES"] ?? "10000") ?? 10_000
    let seconds = Int(environment["HORGOS_BENCH_SECONDS"] ?? "10") ?? 10
    let intervals = (environment["HORGOS_BENCH_INTERVALS"] ?? "500").split(separator: ",").compactMap { Int($0) }
    /// Bytes this process caused to be written to storage so far (`write_bytes` of /proc/self/io).
    func writtenBytes() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/io", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("write_bytes:") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }
    for interval in intervals {
        let dir = "\(root)/vehicle-mode-\(interval)"
        let store = try ShardStore(
            configuration: StoreConfiguration(
                stateDirectory: dir, regions: Region.defaultSet, durability: .disk, applyIntervalMs: interval))
        let writers = Region.defaultSet.map { store.writers[$0]! }
        let start = nowMs - Int64(seconds + 60) * 1000
        submitAll(
            (0..<vehicles).map { Frame(vehicle: $0, bytes: payload(vehicle: $0, baseMs: start, count: 1, stepMs: 1000), records: 1) },
            to: writers)
        let paced = (1...seconds).flatMap { second in
            (0..<vehicles).map { vehicle in
                Frame(
                    vehicle: vehicle,
                    bytes: payload(vehicle: vehicle, baseMs: start + Int64(second) * 1000, count: 1, stepMs: 1000),
                    records: 1)
            }
        }
        let commitsBefore = writers.reduce(0) { $0 + $1.statistics.commits }
        let latencies = Mutex<[Double]>([])
        latencies.withLock { $0.reserveCapacity(paced.count) }
        let remaining = Atomic<Int>(paced.count)
        let done = DispatchSemaphore(value: 0)
        let rate = Double(vehicles)
        let cpuStarted = processCPU()
        let syncsBefore = store.journalStatistics.fdatasyncs
        let writtenBefore = writtenBytes()
        let started = monotonic()
        for (index, frame) in paced.enumerated() {
            let wait = started + Double(index) / rate - monotonic()
            if wait > 0.000_2 { usleep(UInt32(wait * 1e6)) }
            let submitted = monotonic()
            try writers[frame.vehicle % writers.count].submitTelemetry(frame.bytes) { _ in
                let latency = monotonic() - submitted
                latencies.withLock { $0.append(latency) }
                if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.signal() }
            }
        }
        done.wait()
        let elapsed = monotonic() - started
        let cpu = processCPU() - cpuStarted
        let syncs = store.journalStatistics.fdatasyncs - syncsBefore
        store.stop()
        let transactions = writers.reduce(0) { $0 + $1.statistics.commits } - commitsBefore
        let written = writtenBytes() - writtenBefore
        try? FileManager.default.removeItem(atPath: dir)
        let ack = latencySummary(latencies.withLock { $0 })
        print(
            String(
                format: "(f) vehicle mode, apply interval %d ms: %.0f rows/s for %.1f s, ACK p50 %.1f ms, "
                    + "p99 %.1f ms, max %.1f ms; %d apply transactions (%.1f rows each); %.1f us CPU per record; "
                    + "%.0f bytes written per record; %.0f journal fdatasyncs/s",
                interval, Double(paced.count) / elapsed, elapsed, ack.p50, ack.p99, ack.max,
                transactions, Double(paced.count) / Double(max(1, transactions)), cpu * 1e6 / Double(paced.count),
                Double(written) / Double(paced.count), Double(syncs) / elapsed))
    }
}
if parts.contains("g") {
    let environment = ProcessInfo.processInfo.environment
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    try gbt32960Part(
        root: root, frames: Int(environment["HORGOS_BENCH_GBT_FRAMES"] ?? "100000") ?? 100_000,
        vehicles: Int(environment["HORGOS_BENCH_VEHICLES"] ?? "2000") ?? 2_000)
}
if !keepFiles { try? FileManager.default.removeItem(atPath: root) }
