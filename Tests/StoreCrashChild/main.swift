// The child process of the store crash test (Tests/HorgosStoreTests/CrashTests.swift).
//
// Usage: horgos-store-crash-child <state-dir> <base-time-ms> <vehicles> [durability]
// Writes 20-record TELEMETRY frames for <vehicles> vehicles of region AE, one second apart from
// <base-time-ms>, through the real store, and prints one line per acknowledged frame (its journal
// round is durable) on stdout: "<vehicle-index> <first-timestamp-ms> <records>". The parent kills it
// with SIGKILL at a random moment, replays the journal and checks that every printed frame is in the
// files. A journal write or fdatasync failure exits with status 74 (as horgosd does).
import Dispatch
import HorgosStore
import HorgosWire

#if canImport(Glibc)
    import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 4, let base = Int64(arguments[2]), let vehicles = Int(arguments[3]) else {
    print("usage: horgos-store-crash-child <state-dir> <base-time-ms> <vehicles> [disk|process]")
    exit(2)
}
let durability = arguments.count > 4 ? Durability(rawValue: arguments[4]) ?? .disk : .disk
let region = Region("AE")!
let store = try ShardStore(
    configuration: StoreConfiguration(
        stateDirectory: arguments[1], regions: [region], durability: durability, retryDelayMs: 20, maxRetryDelayMs: 200,
        onJournalFailure: { error in
            let line = "journal failed: \(error)\n"
            _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            exit(74)
        })
)
let writer = try store.writer(for: region)
let window = DispatchSemaphore(value: 64)
let recordsPerFrame = 20

func vin(_ index: Int) -> VIN {
    let digits = String(index)
    return VIN("LCRASH" + String(repeating: "0", count: 11 - digits.count) + digits)!
}

for round in 0..<1_000_000 {
    if getppid() == 1 { exit(1) }  // the parent is gone: nobody will kill us
    for vehicle in 0..<vehicles {
        let first = base + Int64(round * recordsPerFrame) * 1000
        let records = (0..<recordsPerFrame).map { index in
            TelemetryRecord(
                timeOffsetMs: UInt32(index * 1000), latitudeE7: 250_000_000 + Int32(vehicle), longitudeE7: 550_000_000,
                speedDkmh: UInt16(index), soc: UInt8(vehicle % 100), status: 0x9)
        }
        var frame: [UInt8] = []
        FrameEncoder.appendTelemetry(vin: vin(vehicle), baseTimeMs: first, records: records, sequence: 1, to: &frame)
        let payload = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
        window.wait()
        try writer.submitTelemetry(payload) { outcome in
            let line = "\(vehicle) \(first) \(outcome.stored + outcome.duplicates)\n"
            _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
            window.signal()
        }
    }
}
store.stop()
