// POSIX calls kept out of Foundation-heavy files: one place for the clocks and fstat the daemon uses.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The few POSIX clock and file calls the daemon makes outside Foundation.
enum PosixClock {
    /// CLOCK_MONOTONIC in microseconds.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// The wall clock in UTC, broken down, with milliseconds.
    static func utcNow() -> (year: Int32, month: Int32, day: Int32, hour: Int32, minute: Int32, second: Int32,
                             millisecond: Int32) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return (parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                Int32(now.tv_nsec / 1_000_000))
    }

    /// `device:inode` of stderr, the form systemd puts in `JOURNAL_STREAM`; nil if fstat fails.
    static func stderrIdentity() -> String? {
        var info = stat()
        guard fstat(2, &info) == 0 else { return nil }
        return "\(UInt64(info.st_dev)):\(UInt64(info.st_ino))"
    }
}
