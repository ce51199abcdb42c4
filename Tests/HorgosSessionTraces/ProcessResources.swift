import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the kernel reports about a process's resources, for the tests that open thousands of
/// connections (the in-process slow-input test in HorgosServerTests and the one against the real
/// daemon in HorgosEndToEndTests share these, so both raise limits and read memory the same way).
public enum ProcessResources {
    /// Raises this process's open-file soft limit towards `wanted` (the hard limit caps it); returns the
    /// limit in force. Child processes started afterwards inherit it (horgosd raises no limit itself:
    /// under systemd `LimitNOFILE=` gives soft = hard).
    public static func raiseOpenFileLimit(to wanted: Int) -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < rlim_t(wanted) {
            limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }

    /// A memory figure of `/proc/<pid>/status` in bytes (`VmRSS`: resident now, `VmHWM`: the peak
    /// resident size); nil when the process or the field is gone.
    public static func memory(_ field: String, pid: Int32? = nil) -> Int? {
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let status = try? String(contentsOfFile: path, encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
            let value = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first,
            let kibibytes = Int(value)
        else { return nil }
        return kibibytes * 1024
    }
}
