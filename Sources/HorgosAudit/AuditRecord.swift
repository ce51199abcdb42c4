import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Who performed an audited action, as far as the recording process can tell.
///
/// `uid` is what the kernel vouches for: the CLI's own real uid for actions it performs alone, or the
/// admin Unix socket peer's uid (`SO_PEERCRED`) for actions the daemon performs. Under the shipped unit
/// (`PrivateUsers=yes`) the daemon sees only root and its own user mapped: any other peer shows as the
/// overflow uid 65534 (`nobody`), and `claimedUser` (what the CLI says, from `SUDO_USER` or the login)
/// is then the name to read, unverified. Over TCP there is no uid at all: `address` says where the
/// request came from.
public struct AuditOperator: Codable, Sendable, Hashable {
    /// The uid the kernel reported (nil over TCP or for a signal).
    public var uid: UInt32?
    /// The user name of `uid` on the recording host (nil when it has none).
    public var user: String?
    /// The process id of the peer or of the CLI.
    public var pid: Int32?
    /// How the action arrived: `cli`, `unix-socket`, `tcp`, `signal` or `journal-replay`.
    public var via: String
    /// What the client said it is (the CLI's `SUDO_USER`, else its login name): not verified.
    public var claimedUser: String?
    /// The peer's address (TCP).
    public var address: String?

    /// An operator from its parts.
    public init(
        uid: UInt32? = nil, user: String? = nil, pid: Int32? = nil, via: String, claimedUser: String? = nil,
        address: String? = nil
    ) {
        self.uid = uid
        self.user = user
        self.pid = pid
        self.via = via
        self.claimedUser = claimedUser
        self.address = address
    }

    enum CodingKeys: String, CodingKey {
        case uid, user, pid, via, address
        case claimedUser = "claimed_user"
    }

    /// The user running this process (for actions `horgosctl` performs alone): its real uid and name,
    /// and `SUDO_USER` as the claimed user when run through sudo.
    public static func invokingUser() -> AuditOperator {
        let uid = getuid()
        let sudo = ProcessInfo.processInfo.environment["SUDO_USER"].flatMap { $0.isEmpty ? nil : $0 }
        return AuditOperator(
            uid: uid, user: userName(uid), pid: getpid(), via: "cli", claimedUser: sudo ?? loginName())
    }

    /// What a client should claim to be: `SUDO_USER`, else the login name, else the user name of its uid.
    public static func claimedName() -> String? {
        let sudo = ProcessInfo.processInfo.environment["SUDO_USER"].flatMap { $0.isEmpty ? nil : $0 }
        return sudo ?? loginName() ?? userName(getuid())
    }

    /// The name of `uid` from the user database, nil when it has none.
    public static func userName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name
        else { return nil }
        return String(cString: name)
    }

    private static func loginName() -> String? {
        ProcessInfo.processInfo.environment["LOGNAME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `uid 0 (root) via cli, pid 42`, for log lines and tables.
    public var summary: String {
        var parts: [String] = []
        if let uid { parts.append("uid \(uid)" + (user.map { " (\($0))" } ?? "")) }
        if let claimedUser, claimedUser != user { parts.append("claims \(claimedUser)") }
        if let address { parts.append("from \(address)") }
        parts.append("via \(via)")
        if let pid { parts.append("pid \(pid)") }
        return parts.joined(separator: ", ")
    }
}

/// How an audited action ended.
public enum AuditOutcome: String, Codable, Sendable, Hashable, CaseIterable {
    /// Done.
    case ok
    /// Refused before anything changed (bad input, not found, forbidden by a policy).
    case refused
    /// Started and failed; `detail` says what changed.
    case failed
    /// Accepted and durable, not finished yet (an erasure waiting for its region's applier).
    case pending
}

/// One line of the audit log: when, who, what with which arguments, and the outcome, chained to the
/// record before it by its hash.
///
/// On disk a record is one line of JSON with sorted keys, ending with its own `hash`: the lower-case hex
/// SHA-256 of the line's bytes without the `,"hash":"…"` member (that is, the same object encoded without
/// it). `prev` is the previous record's hash (64 zeros for the first record); `seq` counts from 1.
public struct AuditRecord: Codable, Sendable, Hashable {
    /// Position in the log, from 1, no gaps.
    public var seq: UInt64
    /// When, ISO 8601 UTC with milliseconds.
    public var time: String
    /// When, ms since the epoch.
    public var timeMs: Int64
    /// What: `erase`, `export`, `backup`, `restore`, `prune`, `pki.issue`, `pki.revoke`, `reload`.
    public var action: String
    /// Who.
    public var actor: AuditOperator
    /// With which arguments (a VIN, a region, a reason, a path...).
    public var arguments: [String: String]
    /// How it ended.
    public var outcome: AuditOutcome
    /// What it did or why it failed, in an operator's words.
    public var detail: String?
    /// The previous record's hash.
    public var prev: String
    /// This record's hash (nil while it is being computed).
    public var hash: String?

    /// A record from its parts (`hash` is computed by ``AuditLog``).
    public init(
        seq: UInt64, timeMs: Int64, action: String, actor: AuditOperator, arguments: [String: String],
        outcome: AuditOutcome, detail: String?, prev: String
    ) {
        self.seq = seq
        self.time = AuditRecord.isoTime(timeMs)
        self.timeMs = timeMs
        self.action = action
        self.actor = actor
        self.arguments = arguments
        self.outcome = outcome
        self.detail = detail
        self.prev = prev
        self.hash = nil
    }

    enum CodingKeys: String, CodingKey {
        case seq, time, action, arguments, outcome, detail, prev, hash
        case timeMs = "time_ms"
        case actor = "operator"
    }

    /// The hash of the record before the first one.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// `2026-11-29T12:00:00.000Z`.
    public static func isoTime(_ ms: Int64) -> String {
        let seconds = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        let millis = Int(ms - Int64(seconds) * 1000)
        var parts = tm()
        var copy = seconds
        gmtime_r(&copy, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// One line for the system log: `audit 12 erase ok by uid 0 (root) via unix-socket: vin=… (hash 1a2b…)`.
    public var summary: String {
        let arguments = self.arguments.keys.sorted().map { "\($0)=\(self.arguments[$0]!)" }.joined(separator: " ")
        return "audit record \(seq): \(action) \(outcome.rawValue) by \(actor.summary)"
            + (arguments.isEmpty ? "" : ": \(arguments)") + (detail.map { " (\($0))" } ?? "")
            + " [hash \(hash ?? "?")]"
    }
}
