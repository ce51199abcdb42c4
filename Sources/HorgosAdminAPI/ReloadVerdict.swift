import Foundation

/// The outcome of the latest reload, served on the admin endpoint's `/reload` (what `horgosctl reload`,
/// the unit's ExecReload, waits for).
public struct ReloadVerdict: Sendable, Codable, Hashable {
    /// Counts reloads since start (0: none yet).
    public var generation: Int
    /// True when everything was read, checked and installed.
    public var succeeded: Bool
    /// What failed, naming the key and file; nil on success.
    public var error: String?
    /// When the reload finished.
    public var finishedAt: Date
    /// Open sessions ended because the new state revokes them (every listener).
    public var revokedSessions: Int
    /// The daemon's process id (so a client can tell it is the process it signalled).
    public var pid: Int32

    /// A verdict from its parts.
    public init(
        generation: Int, succeeded: Bool, error: String?, finishedAt: Date, revokedSessions: Int,
        pid: Int32 = ProcessInfo.processInfo.processIdentifier
    ) {
        self.generation = generation
        self.succeeded = succeeded
        self.error = error
        self.finishedAt = finishedAt
        self.revokedSessions = revokedSessions
        self.pid = pid
    }
}
