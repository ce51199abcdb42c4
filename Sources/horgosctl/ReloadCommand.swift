import ArgumentParser
import Foundation
import HorgosAdminAPI

#if canImport(Glibc)
    import Glibc
#endif

/// `horgosctl reload`: asks the daemon to reload (`POST /reload`, which records the admin socket's peer
/// in the audit log and answers the verdict), so a reload that failed (a garbage CRL, an empty deny
/// list, a bad certificate) fails this command. A daemon without `POST /reload` gets SIGHUP and its
/// verdict is awaited on `GET /reload`.
///
/// It is the unit's `ExecReload=`, which makes `systemctl reload horgosd` fail when the daemon refused
/// the new material (it keeps the previous state in force).
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload certificates, CRLs, the deny list and limits.*, and wait for the daemon's verdict.",
        discussion: """
            Sends POST /reload to the admin endpoint and prints the verdict; the daemon records the reload \
            and who asked (the admin socket's peer) in the audit log. An older daemon without it gets \
            SIGHUP (--pid, which systemd passes as $MAINPID, or the pid the admin endpoint reports) and \
            GET /reload is polled until the reload generation moves on. Exit 0 when the daemon installed \
            the new material; 1 when it refused it (the message says why; the previous certificates, \
            revocations and limits stay in force); 3 when the admin endpoint does not answer or no verdict \
            comes within --timeout seconds.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "The daemon's process id (default: the pid its admin endpoint reports).")
    var pid: Int32?

    @Option(help: "Seconds to wait for the verdict.")
    var timeout = 30

    func run() async throws {
        let context = try await global.context()
        let posted = try await AdminClient.post(
            context.admin, path: "/reload", body: Array("{}".utf8), timeoutSeconds: max(1, timeout))
        if posted.status == 200, let verdict = try? DaemonStatus.decoder().decode(ReloadVerdict.self, from: Data(posted.body)) {
            try report(verdict, json: context.json)
            return
        }
        guard posted.status == 404 || posted.status == 405 else {
            throw CtlError(
                .daemonUnreachable,
                "the admin endpoint \(context.admin) answered HTTP \(posted.status) to POST /reload: "
                    + String(decoding: posted.body.prefix(200), as: UTF8.self),
                remedy: "check the daemon's journal (journalctl -u horgosd)")
        }
        let before = try await Self.verdict(context.admin)
        let target = pid ?? before.pid
        guard kill(target, SIGHUP) == 0 else {
            throw CtlError(
                .failure, "cannot signal process \(target): \(String(cString: strerror(errno)))",
                remedy: "run as the daemon's user or root, and check that --pid is horgosd's process id")
        }
        let deadline = Date().addingTimeInterval(TimeInterval(max(1, timeout)))
        while Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let now = try await Self.verdict(context.admin)
            guard now.generation > before.generation else { continue }
            try report(now, json: context.json)
            return
        }
        throw CtlError(
            .daemonUnreachable, "no reload verdict from \(context.admin) within \(timeout) s",
            remedy: "check the daemon's journal (journalctl -u horgosd)")
    }

    /// Prints a verdict; a refused reload is exit 1.
    private func report(_ verdict: ReloadVerdict, json: Bool) throws(CtlError) {
        if json {
            Console.line(
                "{\"generation\":\(verdict.generation),\"succeeded\":\(verdict.succeeded),"
                    + "\"revokedSessions\":\(verdict.revokedSessions)}")
        }
        guard verdict.succeeded else {
            throw CtlError(
                .failure, "the daemon refused the reload: \(verdict.error ?? "no reason given")",
                remedy: "fix what it names and reload again; the previous certificates, revocations and "
                    + "limits stay in force meanwhile")
        }
        if !json {
            Console.line("reloaded (generation \(verdict.generation), \(verdict.revokedSessions) revoked sessions ended)")
        }
    }

    static func verdict(_ admin: AdminAddress) async throws(CtlError) -> ReloadVerdict {
        let response = try await AdminClient.get(admin, path: "/reload")
        guard response.status == 200,
            let verdict = try? DaemonStatus.decoder().decode(ReloadVerdict.self, from: Data(response.body))
        else {
            throw CtlError(
                .daemonUnreachable, "the admin endpoint \(admin) has no reload verdict (HTTP \(response.status))",
                remedy: "check that --admin names horgosd's admin endpoint and that horgosd is this version")
        }
        return verdict
    }
}
