import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#endif

/// File helpers for PEM material: keys are written 0600, directories 0700, never world-readable.
enum PKIFiles {
    static func pem(of certificate: Certificate) throws(FleetPKIError) -> String {
        do {
            return try certificate.serializeAsPEM().pemString
        } catch {
            throw FleetPKIError(.issuanceFailed, "PEM encoding: \(error)")
        }
    }

    static func readText(_ path: String) throws(FleetPKIError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FleetPKIError(.fileSystem, "cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// Creates `path` and its missing parents with mode 0700 (existing directories are left as they are).
    static func makeDirectory(_ path: String) throws(FleetPKIError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw FleetPKIError(.fileSystem, "\(path) exists and is not a directory")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw FleetPKIError(.fileSystem, "cannot create directory \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `text` to `path` with exactly `mode` (set at creation and again with fchmod, so an existing
    /// file with looser permissions is tightened too), via a temporary file and rename.
    static func write(_ text: String, to path: String, mode: mode_t) throws(FleetPKIError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try makeDirectory(directory) }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw FleetPKIError(.fileSystem, "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var ok = fchmod(fd, mode) == 0
        let bytes = Array(text.utf8)
        var written = 0
        while ok && written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false } else { written += n }
        }
        ok = ok && fsync(fd) == 0
        let failure = String(cString: strerror(errno))
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw FleetPKIError(.fileSystem, "cannot write \(path): \(failure)")
        }
    }
}
