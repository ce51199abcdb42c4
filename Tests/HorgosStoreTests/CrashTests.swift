import Foundation
import HorgosWire
import Synchronization
import Testing

@testable import HorgosStore

/// The `horgos-store-crash-child` executable, built next to the test bundle.
func crashChildPath() -> String? {
    if let path = ProcessInfo.processInfo.environment["HORGOS_STORE_CRASH_CHILD"] { return path }
    var candidates: [String] = []
    for start in [CommandLine.arguments.first ?? "", Bundle.main.bundlePath, Bundle.main.executablePath ?? ""] {
        var url = URL(fileURLWithPath: start)
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            candidates.append(url.appendingPathComponent("horgos-store-crash-child").path)
        }
    }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Reads a pipe to its end on a thread of its own so the child never blocks on a full pipe.
final class PipeCollector: Sendable {
    private let data = Mutex(Data())
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                self.data.withLock { $0.append(chunk) }
            }
            self.done.signal()
        }
        thread.start()
    }

    var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    func waitForEnd() { done.wait() }
}

func crashVIN(_ index: Int) -> VIN {
    let digits = String(index)
    return VIN("LCRASH" + String(repeating: "0", count: 11 - digits.count) + digits)!
}

@Suite(.serialized) struct CrashTests {
    @Test(.timeLimit(.minutes(5)))
    func everyBatchReportedCommittedSurvivesKillNine() throws {
        let child = try #require(crashChildPath(), "horgos-store-crash-child must be built next to the tests")
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let vehicles = 30
        let start = StoreClock.systemMs() - 3 * 86_400_000
        var verifiedBatches = 0
        var kills = 0
        for run in 0..<22 {
            // Each run writes its own time range (a fresh child resumes the same files).
            let base = start + Int64(run) * 10_000_000
            let process = Process()
            process.executableURL = URL(fileURLWithPath: child)
            process.arguments = [dir.path, String(base), String(vehicles), run % 2 == 0 ? "disk" : "process"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let collector = PipeCollector(output.fileHandleForReading)
            // Let it commit something, then kill it at a random moment.
            let deadline = Date().addingTimeInterval(15)
            while !collector.text.contains("\n") && Date() < deadline { usleep(5_000) }
            usleep(UInt32.random(in: 0...400_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            collector.waitForEnd()
            #expect(process.terminationReason == .uncaughtSignal)
            kills += 1

            // Every complete line is a batch the store reported committed.
            var reported: [Int: [(Int64, Int)]] = [:]
            for line in collector.text.split(separator: "\n", omittingEmptySubsequences: true) {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let v = Int(fields[0]), let first = Int64(fields[1]), let n = Int(fields[2])
                else { continue }  // the last line may be cut by the kill
                reported[v, default: []].append((first, n))
            }
            let reader = ShardReader(stateDirectory: dir.path, region: ae)
            for (vehicle, batches) in reported {
                let stored = Set(try reader.track(crashVIN(vehicle), fromMs: base, toMs: base + 10_000_000).map(\.timestampMs))
                for (first, count) in batches {
                    let missing = (0..<count).filter { !stored.contains(first + Int64($0) * 1000) }
                    #expect(missing.isEmpty, "run \(run): vehicle \(vehicle) batch \(first) lost \(missing.count) records")
                    verifiedBatches += 1
                }
            }
            let integrity = try reader.integrityCheck()
            #expect(integrity.allSatisfy { $0.ok }, "run \(run): \(integrity.filter { !$0.ok })")
        }
        print("crash test: \(kills) kills, \(verifiedBatches) committed batches verified")
        #expect(kills >= 20)
        #expect(verifiedBatches > 100)
    }
}
