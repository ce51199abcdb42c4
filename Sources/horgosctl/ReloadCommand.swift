import ArgumentParser
import Foundation
import HorgosAdminAPI

#if canImport(Glibc)
    import Glibc
#endif

/// `horgosctl reload`: signals the daemon to reload (SIGHUP) and waits for its verdict on `GET /reload`,
/// so a reload that failed (a garbage CRL, an empty deny list, a bad certificate) fails this command.
///
/// It is the unit's `ExecReload=`, which makes `systemctl reload horgosd` fail when the daemon refused
/// the new material (it keeps the previous state in force).
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload certificates, CRLs, the deny list and limits.*, and wait for the daemon's verdict.",
        discussion: """
            Sends SIGHUP to --pid (systemd passes $MAINPID), or to the pid the admin endpoint reports, then \
            polls GET /reload until the reload generation moves on. Exit 0 when the daemon installed the new \
            material; 1 when it refused it (the message says why; the previous certificates, revocations \
            and limits stay in force); 3 when the admin endpoint does not answer or no verdict comes within \
            --timeout seconds.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "The daemon's process id (default: the pid its admin endpoint reports).")
    var pid: Int32?

    @Option(help: "Seconds to wait for the verdict.")
    var timeout = 30

    func run() async throws {
        let context = try await global.context()
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
            if context.json {
                Console.line(
                    "{\"generation\":\(now.generation),\"succeeded\":\(now.succeeded),"
                        + "\"revokedSessions\":\(now.revokedSessions)}")
            }
            guard now.succeeded else {
                throw CtlError(
                    .failure, "the daemon refused the reload: \(now.error ?? "no reason given")",
                    remedy: "fix what it names and reload again; the previous certificates, revocations and "
                        + "limits stay in force meanwhile")
            }
            if !context.json {
                Console.line("reloaded (generation \(now.generation), \(now.revokedSessions) revoked sessions ended)")
            }
            return
        }
        throw CtlError(
            .daemonUnreachable, "no reload verdict from \(context.admin) within \(timeout) s",
            remedy: "check the daemon's journal (journalctl -u horgosd)")
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
