import Foundation
import HorgosStore
import HorgosWire

#if canImport(Glibc)
    import Glibc
#endif

/// `<state>/stream/published`: how far this node's journal is on the stream, so a restart republishes
/// only the tail the stream may lack (the stream's duplicate window drops what it already has).
///
/// Text, one `key value` pair a line: `node <node.id>`, `stream <stream.name>`, `lsn <L>` (every entry
/// at or below L is on the stream or was never to be published), then `<CC> <LSN>` per region (the
/// region's last entry on the stream). Replaced atomically (temporary file, fsync, rename, directory
/// fsync) at most every 250 ms while the publisher moves, and at stop.
public struct PublishedLSNFile: Sendable, Hashable {
    public static let directoryName = "stream"
    public static let fileName = "published"

    public var node: String?
    public var stream: String?
    public var lsn: UInt64 = 0
    public var regions: [Region: UInt64] = [:]

    public init(node: String? = nil, stream: String? = nil, lsn: UInt64 = 0, regions: [Region: UInt64] = [:]) {
        self.node = node
        self.stream = stream
        self.lsn = lsn
        self.regions = regions
    }

    public static func path(stateDirectory: String) -> String {
        "\(stateDirectory)/\(directoryName)/\(fileName)"
    }

    /// The file's contents; empty (LSN 0) when there is none.
    public static func read(stateDirectory: String) -> PublishedLSNFile {
        var contents = PublishedLSNFile()
        guard let text = try? String(contentsOfFile: path(stateDirectory: stateDirectory), encoding: .utf8) else {
            return contents
        }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2 else { continue }
            switch fields[0] {
            case "node": contents.node = String(fields[1])
            case "stream": contents.stream = String(fields[1])
            case "lsn": contents.lsn = UInt64(fields[1]) ?? 0
            default:
                if let region = Region(String(fields[0])), let lsn = UInt64(fields[1]) {
                    contents.regions[region] = lsn
                }
            }
        }
        return contents
    }

    /// Writes the file atomically and durably.
    public func write(stateDirectory: String) throws {
        let directory = "\(stateDirectory)/\(Self.directoryName)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var text = ""
        if let node { text += "node \(node)\n" }
        if let stream { text += "stream \(stream)\n" }
        text += "lsn \(lsn)\n"
        for region in regions.keys.sorted() { text += "\(region.code) \(regions[region]!)\n" }
        let path = "\(directory)/\(Self.fileName)"
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                throw POSIXError(.init(rawValue: code) ?? .EIO)
            }
            written += n
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(temporary, path) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }
}
