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
                let stored = Set(
                    try reader.track(crashVIN(vehicle), fromMs: base, toMs: base + 10_000_000).map(\.timestampMs))
                for (first, count) in batches {
                    let missing = (0..<count).filter { !stored.contains(first + Int64($0) * 1000) }
                    #expect(
                        missing.isEmpty, "run \(run): vehicle \(vehicle) batch \(first) lost \(missing.count) records")
                    verifiedBatches += 1
                }
            }
            let integrity = reader.integrityCheck()
            #expect(integrity.allSatisfy { $0.ok }, "run \(run): \(integrity.filter { !$0.ok })")
        }
        print("crash test: \(kills) kills, \(verifiedBatches) committed batches verified")
        #expect(kills >= 20)
        #expect(verifiedBatches > 100)
    }
}

/// Whether `strace` can trace a child here (installed by .ci/run; ptrace allowed).
let canStrace: Bool =
    FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")
    && runProgram("/usr/bin/strace", ["-o", "/dev/null", "/bin/true"]) == 0

@Suite(.serialized) struct InjectedIOErrorTests {
    @Test(
        .enabled(if: canStrace || ciRequiresHostTools, "needs strace with ptrace permission"), .timeLimit(.minutes(2)))
    func injectedWriteErrorsDegradeThenRecoverWithoutLosingReportedBatches() throws {
        try #require(canStrace, "CI=true: strace is missing or may not ptrace; .ci/run installs it (apt strace)")
        let child = try #require(crashChildPath())
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let base = StoreClock.systemMs() - 3_600_000
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        // Invocations 300 to 340 of pwrite64 (WAL, database and shared-memory writes) fail with EIO,
        // then the disk "heals". Each retry uses up a few of them.
        process.arguments = [
            "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64", "-e", "inject=pwrite64:error=EIO:when=300..340",
            child, dir.path, String(base), "20", "disk",
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let stdout = PipeCollector(output.fileHandleForReading)
        let stderr = PipeCollector(errors.fileHandleForReading)
        let deadline = Date().addingTimeInterval(60)
        while !stderr.text.contains("recovered") && Date() < deadline { usleep(20_000) }
        let linesAtRecovery = stdout.text.split(separator: "\n").count
        while stdout.text.split(separator: "\n").count < linesAtRecovery + 50 && Date() < deadline { usleep(20_000) }
        // Kill the traced child itself (strace follows it and exits with it).
        let pidText = try String(
            contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children",
            encoding: .utf8)
        for pid in pidText.split(separator: " ").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        process.waitUntilExit()
        stdout.waitForEnd()
        stderr.waitForEnd()

        let log = stderr.text
        #expect(log.contains("AE: writer degraded (io_error)"), "\(log.prefix(2000))")
        #expect(log.contains("AE: writer recovered from io_error"))
        #expect(log.components(separatedBy: "writer degraded").count == 2)  // logged once
        var verified = 0
        let reader = ShardReader(stateDirectory: dir.path, region: ae)
        var stored: [Int: Set<Int64>] = [:]
        for line in stdout.text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let v = Int(fields[0]), let first = Int64(fields[1]), let n = Int(fields[2]) else {
                continue
            }
            if stored[v] == nil {
                stored[v] = Set(try reader.track(crashVIN(v), fromMs: 0, toMs: .max).map(\.timestampMs))
            }
            let missing = (0..<n).filter { !stored[v]!.contains(first + Int64($0) * 1000) }
            #expect(missing.isEmpty, "vehicle \(v) batch \(first) lost \(missing.count) records")
            verified += 1
        }
        #expect(verified > linesAtRecovery)
        #expect(reader.integrityCheck().allSatisfy { $0.ok })
    }
}
