import Foundation

/// What a child process left behind: its exit status (or the negated signal that ended it) and its output.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    public var standardOutput: String { String(decoding: stdout, as: UTF8.self) }
    public var standardError: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs a program to completion and returns its status and output, without holding a thread of Swift's
/// cooperative pool while it runs (`offThePool`). Output goes through temporary files, so no pipe can fill up
/// and block the child. `environment` nil inherits the test's; `input` is written to its standard input.
public func runProcess(
    _ executable: String, _ arguments: [String], in directory: String? = nil,
    environment: [String: String]? = nil, input: [UInt8]? = nil
) async throws -> ProcessOutput {
    try await offThePool {
        let scratch = NSTemporaryDirectory() + "horgos-child-\(UInt64.random(in: 0...UInt64.max))"
        let paths = (out: scratch + ".out", err: scratch + ".err", input: scratch + ".in")
        _ = FileManager.default.createFile(atPath: paths.out, contents: nil)
        _ = FileManager.default.createFile(atPath: paths.err, contents: nil)
        defer {
            for path in [paths.out, paths.err, paths.input] { try? FileManager.default.removeItem(atPath: path) }
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: paths.out))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: paths.err))
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = err
        if let input {
            _ = FileManager.default.createFile(atPath: paths.input, contents: Data(input))
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: paths.input))
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        process.waitUntilExit()
        let status =
            process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
        let stdout = (try? Data(contentsOf: URL(fileURLWithPath: paths.out))) ?? Data()
        let stderr = (try? Data(contentsOf: URL(fileURLWithPath: paths.err))) ?? Data()
        return ProcessOutput(status: status, stdout: Array(stdout), stderr: Array(stderr))
    }
}
