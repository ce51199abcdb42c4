import Foundation
import HorgosAdminAPI
import HorgosAudit
import HorgosServer
import HorgosStore
import HorgosWire
import Logging
import NIOPosix
import Synchronization

/// Compliance per market (issue 22) in the daemon: each region's policy in the store, the audit log,
/// and the admin endpoint's actions (`POST /erase`, `POST /reload`), each recorded in the audit log
/// with the peer that asked.
extension Daemon {
    /// The store's per-region settings from `policy.<CC>.*`: retention and position rounding.
    static func regionStorePolicies(_ configuration: HorgosConfiguration) -> [Region: RegionStorePolicy] {
        var policies: [Region: RegionStorePolicy] = [:]
        for code in configuration.regions {
            guard let region = Region(code) else { continue }
            let policy = configuration.policy(for: code)
            policies[region] = RegionStorePolicy(
                retentionDays: policy.retentionDays, positionDecimals: policy.positionDecimals)
        }
        return policies
    }

    /// Every served region's effective policy, for `/status`.
    static func regionPolicies(_ configuration: HorgosConfiguration) -> [String: RegionPolicy] {
        Dictionary(uniqueKeysWithValues: configuration.regions.map { ($0, configuration.policy(for: $0)) })
    }

    /// Refuses (exit 78 naming the key) an `audit.path` whose directory does not exist (the default, in
    /// the state directory, is created with it).
    static func checkAuditPath(_ configuration: HorgosConfiguration) throws(DaemonStartupError) {
        guard !configuration.audit.path.isEmpty else { return }
        let directory = (configuration.audit.path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard directory.isEmpty || (FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
            && isDirectory.boolValue)
        else {
            throw DaemonStartupError(
                message: "audit.path: the audit log's directory \(directory) does not exist; create it (writable by "
                    + "the daemon's user) or set audit.path to a file in an existing directory",
                exitCode: 78)
        }
    }

    /// The audit log (`audit.path`), every record also logged at notice level; refuses to start when
    /// the log cannot be appended to (its owner, or a damaged end: RUNBOOK "Audit log").
    static func openAuditLog(_ configuration: HorgosConfiguration, logger: Logger) throws(DaemonStartupError)
        -> AuditLog
    {
        let audit = AuditLog(path: configuration.effectiveAuditPath) { record in
            logger.notice("\(record.summary)", metadata: ["component": "audit"])
        }
        do {
            try audit.checkWritable()
        } catch {
            throw DaemonStartupError(message: "audit.path: \(error)", exitCode: 78)
        }
        for code in configuration.regions where configuration.policies[code] != nil {
            logger.info("region policy", metadata: ["region": "\(code)", "policy": "\(configuration.policy(for: code).summary)"])
        }
        return audit
    }

    /// The admin endpoint's POST routes: `/erase` and `/reload`.
    static func adminActions(
        store: ShardStore, configuration: HorgosConfiguration, audit: AuditLog, reload: ReloadAction, logger: Logger
    ) -> @Sendable (AdminPostRequest) async -> AdminPostReply {
        let eraser = VehicleEraser(store: store, stateDirectory: configuration.stateDirectory, audit: audit, logger: logger)
        return { request in
            let actor = request.peer.auditOperator(claimedUser: request.claimedUser)
            switch request.path {
            case "/erase":
                return await eraser.erase(request.body, actor: actor)
            case "/reload":
                let verdict = await reload.run(actor: actor)
                return .json(200, verdict)
            default:
                return .json(404, ["error": "no POST \(request.path); the daemon's actions are POST /erase and POST /reload"])
            }
        }
    }
}

extension StoreConfiguration {
    /// This configuration with each region's policy set.
    func with(regionPolicies: [Region: RegionStorePolicy]) -> StoreConfiguration {
        var copy = self
        copy.regionPolicies = regionPolicies
        return copy
    }
}

/// A reload of certificates, CRLs, the deny list and `limits.*`, bracketed by RELOADING=1 / READY=1,
/// recorded in the audit log with who asked (a SIGHUP's sender is not known: `via signal`).
struct ReloadAction: Sendable {
    let reloader: TrustReloader
    let certificatePath: String
    let notifier: SystemdNotifier
    let state: DaemonState
    let audit: AuditLog
    let logger: Logger

    func run(actor: AuditOperator) async -> ReloadVerdict {
        notifier.reloading(status: "reloading certificates, revocations and limits")
        logger.notice("reload requested", metadata: ["by": "\(actor.summary)"])
        let verdict = await reloader.reload()
        if verdict.succeeded {
            FleetMetrics.recordServerCertificateExpiry(chainPath: certificatePath)
            FleetMetrics.recordRevocationListLoaded()
        }
        notifier.ready(status: verdict.succeeded ? state.statusLine() : "reload failed: \(verdict.error ?? "")")
        let audit = self.audit
        do {
            _ = try await VehicleEraser.blocking {
                try audit.append(
                    "reload", by: actor, arguments: ["generation": "\(verdict.generation)"],
                    outcome: verdict.succeeded ? .ok : .failed,
                    detail: verdict.succeeded
                        ? "certificates, revocations and limits reloaded; \(verdict.revokedSessions) revoked sessions ended"
                        : verdict.error)
            }
        } catch {
            logger.error("the reload could not be recorded in the audit log", metadata: ["error": "\(error)"])
        }
        return verdict
    }
}

/// `POST /erase` with `{"vin": "...", "reason": "..."}`: erases the vehicle from every region of this
/// node that holds it (a journal tombstone per region, applied in LSN order with ingest), waits for the
/// appliers' reports and answers them, recording in the audit log the request once its tombstones are
/// durable (outcome `pending`: from then on a crash cannot undo it) and its result once applied.
///
/// Answers: 200 with the reports; 202 when a tombstone is durable but its region has not applied it
/// within `applyTimeout` (it will: a replay applies it too); 400 for a bad body, VIN or missing reason;
/// 404 when no region of this node holds the VIN; 503 when the journal takes nothing (stopping, failed)
/// or the audit log cannot be written (nothing is erased then).
struct VehicleEraser: Sendable {
    let store: ShardStore
    let stateDirectory: String
    let audit: AuditLog
    let logger: Logger
    /// How long the answer waits for the regions' appliers.
    var applyTimeout: Duration = .seconds(120)

    /// The request body.
    struct Request: Decodable {
        var vin: String?
        var reason: String?
    }

    /// The 200 and 202 answers.
    struct Answer: Encodable {
        var vin: String
        var reason: String
        var regions: [EraseReport]
        var pendingRegions: [String]
        var telemetryRows: Int
        var totalRows: Int
        var auditRecord: UInt64?
    }

    func erase(_ body: [UInt8], actor: AuditOperator) async -> AdminPostReply {
        let request = try? JSONDecoder().decode(Request.self, from: Data(body))
        let vinText = request?.vin?.uppercased() ?? ""
        let reason = request?.reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        var arguments = ["vin": vinText, "reason": reason]
        func refuse(_ status: Int, _ message: String) async -> AdminPostReply {
            _ = await record(arguments, .refused, message, actor: actor)
            return .json(status, ["error": message])
        }
        guard request != nil else {
            return await refuse(400, "the body is not JSON of the form {\"vin\": ..., \"reason\": ...}")
        }
        guard let vin = VIN(vinText) else {
            return await refuse(400, "VIN \"\(vinText)\" is not 17 characters of A-H, J-N, P, R-Z and 0-9")
        }
        guard !reason.isEmpty else {
            return await refuse(400, "an erasure needs a reason (the request it answers, for the audit log)")
        }
        let audit = self.audit
        do {
            try await Self.blocking { try audit.checkWritable() }
        } catch {
            logger.error("erasure refused: the audit log cannot be written", metadata: ["error": "\(error)"])
            return .json(503, ["error": "the audit log cannot be written, so nothing is erased: \(error)"])
        }
        let holders = (try? await Self.blocking { [self] in regions(holding: vin) }) ?? []
        arguments["regions"] = holders.map(\.code).joined(separator: ",")
        guard !holders.isEmpty else {
            return await refuse(
                404, "unknown VIN \(vin): no region of this node (\(store.writers.keys.sorted().map(\.code).joined(separator: " "))) "
                    + "holds rows or a registry entry of it")
        }
        let durable = Gathering<String>(expected: holders.count)
        let applied = Gathering<EraseReport>(expected: holders.count)
        var submitted = 0
        for region in holders {
            do {
                try store.writer(for: region).submitErase(vin, durable: { durable.add(region.code) }) { report in
                    applied.add(report)
                }
                submitted += 1
            } catch {
                logger.error("erasure not journaled", metadata: ["region": "\(region)", "error": "\(error)"])
                break
            }
        }
        guard submitted == holders.count else {
            let detail = "the journal takes no more entries (stopping or failed); \(submitted) of \(holders.count) "
                + "regions have a tombstone and will be erased, run the erase again after the restart"
            _ = await record(arguments, .failed, detail, actor: actor)
            return .json(503, ["error": detail])
        }
        // Once every tombstone is durable the erasure is certain (a crash replays it): the request is
        // recorded then, with who asked and why, and its result once the appliers report.
        let durableRegions = await durable.wait(timeout: applyTimeout)
        _ = await record(
            arguments, .pending,
            "tombstones durable in \(durableRegions.sorted().joined(separator: " ")); a restart replays them", actor: actor)
        // Logged after the audit record is durable: whoever sees this line (an operator, a test) finds the
        // request in the audit log too, even if the node dies right after.
        logger.notice(
            "erasure durable",
            metadata: ["vin": "\(vin)", "regions": "\(durableRegions.sorted())", "by": "\(actor.summary)"])
        let reports = await applied.wait(timeout: applyTimeout)
        let pending = holders.map(\.code).filter { code in !reports.contains { $0.region == code } }
        var answer = Answer(
            vin: vin.description, reason: reason, regions: reports.sorted { $0.region < $1.region },
            pendingRegions: pending, telemetryRows: reports.reduce(0) { $0 + $1.telemetryRows },
            totalRows: reports.reduce(0) { $0 + $1.totalRows }, auditRecord: nil)
        let files = reports.reduce(0) { $0 + $1.files.count }
        let detail =
            "\(answer.telemetryRows) telemetry rows, \(answer.totalRows) rows in \(files) files"
            + (pending.isEmpty ? "" : "; journaled, not yet applied in \(pending.joined(separator: " "))")
        answer.auditRecord = await record(arguments, pending.isEmpty ? .ok : .pending, detail, actor: actor)
        return .json(pending.isEmpty ? 200 : 202, answer)
    }

    /// Appends an `erase` record (off the cooperative pool: it fsyncs); its number, nil when it failed
    /// (logged: the erasure itself is not undone).
    func record(_ arguments: [String: String], _ outcome: AuditOutcome, _ detail: String, actor: AuditOperator) async
        -> UInt64?
    {
        let audit = self.audit
        do {
            return try await Self.blocking {
                try audit.append("erase", by: actor, arguments: arguments, outcome: outcome, detail: detail).seq
            }
        } catch {
            logger.critical("an erasure could not be recorded in the audit log", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Runs blocking file work (SQLite reads, the audit log's fsync) on NIO's thread pool, not on the
    /// two threads of Swift's cooperative pool.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// The served regions whose registry or day files hold `vin`.
    func regions(holding vin: VIN) -> [Region] {
        store.writers.keys.sorted().filter { region in
            (try? ShardReader(stateDirectory: stateDirectory, region: region).holds(vin)) ?? false
        }
    }
}

/// Gathers what the regions report for one erasure (delivered on journal and applier threads) until
/// all have reported or a timeout passed.
final class Gathering<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<[Element], Never>?
        var done = false
    }

    private let expected: Int
    private let state = Mutex(State())

    init(expected: Int) { self.expected = expected }

    func add(_ item: Element) {
        let resume: (CheckedContinuation<[Element], Never>, [Element])? = state.withLock { state in
            state.items.append(item)
            guard state.items.count == expected, !state.done, let waiter = state.waiter else { return nil }
            state.done = true
            state.waiter = nil
            return (waiter, state.items)
        }
        if let (waiter, items) = resume { waiter.resume(returning: items) }
    }

    /// Everything, or what arrived within `timeout`.
    func wait(timeout: Duration) async -> [Element] {
        await withCheckedContinuation { continuation in
            let ready: [Element]? = state.withLock { state in
                if state.items.count >= expected {
                    state.done = true
                    return state.items
                }
                state.waiter = continuation
                return nil
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            Task { [self] in
                try? await Task.sleep(for: timeout)
                let late: (CheckedContinuation<[Element], Never>, [Element])? = state.withLock { state in
                    guard !state.done, let waiter = state.waiter else { return nil }
                    state.done = true
                    state.waiter = nil
                    return (waiter, state.items)
                }
                if let (waiter, items) = late { waiter.resume(returning: items) }
            }
        }
    }
}
