import Foundation
import HorgosWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The server clock used by default.
public enum StoreClock {
    /// Wall-clock time in ms since the epoch (UTC).
    @Sendable public static func systemMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// A monotonic clock in nanoseconds (commit latency, progress time).
    static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// File names and file-system helpers of the region layout `<state>/<CC>/...`.
enum StoreFiles {
    static let registryFileName = "registry.sqlite"

    static func regionDirectory(_ state: String, _ region: Region) -> String { "\(state)/\(region.code)" }

    static func createDirectory(_ path: String) throws(StoreError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.fileSystem, message: "\(error)", context: "create directory \(path)")
        }
    }

    /// The days of the partition files in a region directory, oldest first.
    static func partitionDays(in directory: String) -> [UTCDay] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { UTCDay(partitionFileName: $0) }.sorted()
    }

    /// Size of a file in bytes, 0 if it does not exist.
    static func size(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Deletes a database with its -wal and -shm files.
    static func deleteDatabase(_ path: String) throws(StoreError) {
        for suffix in ["-wal", "-shm", ""] {
            let file = path + suffix
            if unlink(file) != 0 && errno != ENOENT {
                throw StoreError(.fileSystem, message: String(cString: strerror(errno)), context: "delete \(file)")
            }
        }
    }

    @discardableResult
    static func writeAll(fd: Int32, _ pointer: UnsafePointer<CChar>, _ count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let n = write(fd, pointer + offset, count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}
