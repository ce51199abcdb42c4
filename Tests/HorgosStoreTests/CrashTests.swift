import Foundation
import HorgosTestSupport
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

/// `horgos-store-crash-child` run under `strace` with `arguments`, its stdout and stderr collected.
struct TracedChild {
    let process = Process()
    let stdout: PipeCollector
    let stderr: PipeCollector

    init(straceArguments: [String], child: String, childArguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        process.arguments = straceArguments + [child] + childArguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        stdout = PipeCollector(output.fileHandleForReading)
        stderr = PipeCollector(errors.fileHandleForReading)
    }

    /// Kills the traced child (strace follows it and exits with it) unless it exited, and waits (off the pool).
    func finish() async throws {
        if process.isRunning {
            let pids =
                (try? String(
                    contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children",
                    encoding: .utf8)) ?? ""
            for pid in pids.split(separator: " ").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        let (process, stdout, stderr) = (process, stdout, stderr)
        try await offThePool {
            process.waitUntilExit()
            stdout.waitForEnd()
            stderr.waitForEnd()
        }
    }
}

/// Replays the journal of `stateDirectory` (a store start and stop), then checks that every batch the
/// child reported ("<vehicle> <first-ms> <records>" lines) is stored; returns the batches checked.
func verifyReportedBatches(_ text: String, stateDirectory: String) throws -> Int {
    let recovery = try ShardStore(
        configuration: StoreConfiguration(stateDirectory: stateDirectory, regions: [ae], log: { _, _ in }))
    recovery.stop()
    let reader = ShardReader(stateDirectory: stateDirectory, region: ae)
    var verified = 0
    var stored: [Int: Set<Int64>] = [:]
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count == 3, let v = Int(fields[0]), let first = Int64(fields[1]), let n = Int(fields[2]) else {
            continue  // the last line may be cut by the kill
        }
        if stored[v] == nil {
            stored[v] = Set(try reader.track(crashVIN(v), fromMs: 0, toMs: .max).map(\.timestampMs))
        }
        let missing = (0..<n).filter { !stored[v]!.contains(first + Int64($0) * 1000) }
        #expect(missing.isEmpty, "vehicle \(v) batch \(first) lost \(missing.count) records")
        verified += 1
    }
    #expect(reader.integrityCheck().allSatisfy { $0.ok })
    return verified
}

@Suite(.serialized) struct CrashTests {
    @Test(.timeLimit(.minutes(5)))
    func everyBatchReportedCommittedSurvivesKillNine() async throws {
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
            _ = await eventually(seconds: 15) { collector.text.contains("\n") }
            try await Task.sleep(for: .microseconds(Int.random(in: 0...400_000)))
            kill(process.processIdentifier, SIGKILL)
            try await offThePool {
                process.waitUntilExit()
                collector.waitForEnd()
            }
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
            // The next start replays the journal into the shards.
            let recovery = try ShardStore(
                configuration: StoreConfiguration(stateDirectory: dir.path, regions: [ae], log: { _, _ in }))
            recovery.stop()
            let reader = ShardReader(stateDirectory: dir.path, region: ae)
            for (vehicle, batches) in reported {
                // From this run's base to the end: a fast (release) child writes past base + 10,000 s (500
                // rounds of 20 records), into where the next run will start; a bounded range missed those.
                let track = try reader.track(crashVIN(vehicle), fromMs: base, toMs: .max)
                let stored = Set(track.map(\.timestampMs))
                #expect(stored.count == track.count, "run \(run): vehicle \(vehicle) has duplicate rows")
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

/// Whether `strace` is installed (by .ci/run). In CI (CI=true) the tests that need it run regardless, and
/// fail if it is missing or may not ptrace (`straceCanTrace()`, checked inside the tests).
let canStrace: Bool =
    ProcessInfo.processInfo.environment["CI"] == "true"
    || FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")

/// Whether `strace` can trace a child here (ptrace allowed).
func straceCanTrace() async -> Bool {
    (try? await runProcess("/usr/bin/strace", ["-o", "/dev/null", "/bin/true"]).status) == 0
}

/// The parsed lines of an `strace -f -y -o FILE` log, each with the calling thread.
struct StraceLog {
    struct Call {
        let pid: Int
        let text: String
    }
    let calls: [Call]

    /// Joins `<unfinished ...>` / `<... resumed>` pairs into one call, placed where it returned.
    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var calls: [Call] = []
        var unfinished: [Int: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 1)
            // strace pads the pid ("%-5d "): a short pid is followed by more than one space.
            guard fields.count == 2, let pid = Int(fields[0]) else { continue }
            var body = String(fields[1].drop { $0 == " " })
            if body.hasSuffix("<unfinished ...>") {
                unfinished[pid] = String(body.dropLast("<unfinished ...>".count))
                continue
            }
            if body.hasPrefix("<... "), let range = body.range(of: "resumed>") {
                body = (unfinished.removeValue(forKey: pid) ?? "") + body[range.upperBound...]
            }
            calls.append(Call(pid: pid, text: body))
        }
        self.calls = calls
    }
}

/// A journal fdatasync that fails must stop every acknowledgement (a `disk` journal that behaved
/// like `process`, acknowledging after the write alone, would fail this test: it never calls
/// fdatasync, so the injected failure never happens and the child never stops).
@Suite(.serialized) struct JournalFsyncFailureTests {
    @Test(.enabled(if: canStrace || ciRequiresHostTools, "needs strace with ptrace permission"), .timeLimit(.minutes(2)))
    func aFailedJournalFdatasyncStopsAcknowledgingAndExitsNonZeroAndReplayKeepsEveryAck() async throws {
        try #require(await straceCanTrace(), "strace is missing or may not ptrace; .ci/run installs it (apt strace)")
        let child = try #require(crashChildPath())
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let base = StoreClock.systemMs() - 3_600_000
        let trace = dir.path + "/strace.log"
        // Every fdatasync from the 30th on fails (the journal's and, later, SQLite's checkpoints).
        let traced = try TracedChild(
            straceArguments: [
                "-f", "-y", "-qq", "-o", trace, "-e", "trace=fdatasync,write", "-e", "inject=fdatasync:error=EIO:when=30+",
            ],
            child: child, childArguments: [dir.path + "/state", String(base), "8", "disk"])
        _ = await eventually(seconds: 60, pollMilliseconds: 20) { !traced.process.isRunning }
        try await traced.finish()
        let process = traced.process
        let stdout = traced.stdout
        let stderr = traced.stderr
        #expect(process.terminationStatus == 74, "the child must exit 74 after the failed fdatasync")
        #expect(stderr.text.contains("journal failed"), "\(stderr.text.prefix(1000))")

        // In the trace: the journal's fdatasync that failed, and no acknowledgement written after it.
        let log = try StraceLog(path: trace)
        let journalSync = { (call: StraceLog.Call) in
            call.text.hasPrefix("fdatasync(") && call.text.contains("/journal/")
        }
        let failedIndex = try #require(
            log.calls.firstIndex { journalSync($0) && $0.text.contains("EIO") },
            "no failed journal fdatasync in \(log.calls.count) calls: \(log.calls.filter { $0.text.contains("EIO") }.prefix(3))")
        let acks = log.calls.indices.filter { log.calls[$0].text.hasPrefix("write(1<") }
        #expect(!acks.isEmpty)
        #expect(acks.allSatisfy { $0 < failedIndex }, "an ACK was written after the failed fdatasync")
        // On the journal thread (which runs the completions): after each write of entries to a
        // segment, the segment's fdatasync returned 0 before the next acknowledgement was written.
        let journalThread = log.calls[failedIndex].pid
        var synced = true
        var checkedAcks = 0
        for call in log.calls where call.pid == journalThread {
            if call.text.hasPrefix("write(") && call.text.contains("/journal/") {
                synced = false
            } else if journalSync(call) && call.text.hasSuffix("= 0") {
                synced = true
            } else if call.text.hasPrefix("write(1<") {
                #expect(synced, "an ACK was written before its journal round's fdatasync returned: \(call.text)")
                checkedAcks += 1
            }
        }
        #expect(checkedAcks == acks.count)

        // Every acknowledged frame is there after the replay.
        let verified = try verifyReportedBatches(stdout.text, stateDirectory: dir.path + "/state")
        #expect(verified > 0)
    }
}

@Suite(.serialized) struct InjectedIOErrorTests {
    @Test(
        .enabled(if: canStrace || ciRequiresHostTools, "needs strace with ptrace permission"), .timeLimit(.minutes(2)))
    func injectedWriteErrorsDegradeThenRecoverWithoutLosingReportedBatches() async throws {
        try #require(await straceCanTrace(), "strace is missing or may not ptrace; .ci/run installs it (apt strace)")
        let child = try #require(crashChildPath())
        let dir = TempDirectory()
        defer { dir.cleanup() }
        let base = StoreClock.systemMs() - 3_600_000
        // Invocations 300 to 340 of pwrite64 (WAL, database and shared-memory writes) fail with EIO,
        // then the disk "heals". Each retry uses up a few of them. (The journal writes with write().)
        let traced = try TracedChild(
            straceArguments: [
                "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64", "-e", "inject=pwrite64:error=EIO:when=300..340",
            ],
            child: child, childArguments: [dir.path, String(base), "20", "disk"])
        let stdout = traced.stdout
        let stderr = traced.stderr
        _ = await eventually(seconds: 60, pollMilliseconds: 20) { stderr.text.contains("recovered") }
        let linesAtRecovery = stdout.text.split(separator: "\n").count
        _ = await eventually(seconds: 60, pollMilliseconds: 20) {
            stdout.text.split(separator: "\n").count >= linesAtRecovery + 50
        }
        try await traced.finish()

        let log = stderr.text
        #expect(log.contains("AE: writer degraded (io_error)"), "\(log.prefix(2000))")
        #expect(log.contains("AE: writer recovered from io_error"))
        #expect(log.components(separatedBy: "writer degraded").count == 2)  // logged once
        let verified = try verifyReportedBatches(stdout.text, stateDirectory: dir.path)
        #expect(verified > linesAtRecovery)
    }
}
