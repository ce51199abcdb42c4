import Foundation
import HorgosAudit
import HorgosConfig

#if canImport(Glibc)
    import Glibc
#endif

/// How `horgosctl` records the actions it performs alone (export, backup, restore, prune, pki issue and
/// revoke) in the audit log, as the invoking user: checked before the action (an action that could not
/// be recorded does not start), appended after it with its outcome, and sent to syslog at notice level.
struct AuditTrail {
    let log: AuditLog
    let action: String
    var arguments: [String: String]

    /// A trail for `action` into the configuration's `audit.path`, or exit 1 naming the problem when the
    /// log cannot be appended to (nothing was done). `fallbackDirectory`: for `pki`, which may run where no
    /// node state exists yet (an offline CA, a bootstrap before the first start): the record then goes to
    /// `audit.log` in that directory when the configured one's directory does not exist.
    init(
        _ context: CtlContext, action: String, arguments: [String: String], fallbackDirectory: String? = nil
    ) throws(CtlError) {
        var path = context.configuration.effectiveAuditPath
        let directory = (path as NSString).deletingLastPathComponent
        if let fallbackDirectory, !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            path = (fallbackDirectory as NSString).appendingPathComponent("audit.log")
        }
        log = AuditLog(path: path) { record in Self.syslogNotice(record.summary) }
        self.action = action
        self.arguments = arguments
        do {
            try log.checkWritable()
        } catch {
            throw CtlError(
                .failure, "\(action) not started: it cannot be recorded in the audit log: \(error.message)",
                remedy: error.remedy)
        }
    }

    /// Appends the outcome; a failure to record is an error of its own (exit 1) after the action.
    func record(_ outcome: AuditOutcome, _ detail: String?) throws(CtlError) {
        do {
            try log.append(action, by: .invokingUser(), arguments: arguments, outcome: outcome, detail: detail)
        } catch {
            throw CtlError(
                .failure, "\(action) done, but its audit record could not be written: \(error.message)",
                remedy: error.remedy)
        }
    }

    /// Runs `body`, then records `ok` with the detail it returns, or `refused`/`failed` with the error
    /// (a `CtlError` of bad arguments or not found is a refusal: nothing changed), and rethrows.
    func run<T>(_ body: () async throws -> (T, String)) async throws -> T {
        let result: T
        let detail: String
        do {
            (result, detail) = try await body()
        } catch let error as CtlError {
            let refused = error.status == .badArguments || error.status == .notFound
            try? record(refused ? .refused : .failed, error.problem)
            throw error
        } catch {
            try? record(.failed, "\(error)")
            throw error
        }
        try record(.ok, detail)
        return result
    }

    /// One line to the system log (journald through /dev/log) at notice level; silently nothing when no
    /// syslog socket exists.
    static func syslogNotice(_ message: String) {
        openlog("horgosctl", LOG_PID, LOG_AUTHPRIV)
        message.withCString { text in withVaList([text]) { vsyslog(LOG_NOTICE, "%s", $0) } }
        closelog()
    }
}
