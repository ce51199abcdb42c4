import ArgumentParser
import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosWire
import NIOSSL

/// `horgos-sim`: a simulated fleet speaking the real protocol over mutual TLS.
@main
struct HorgosSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "horgos-sim",
        abstract: "Drive a simulated electric-vehicle fleet against horgosd over mutual TLS.",
        discussion: """
            Vehicle mode (default) opens one connection per vehicle, each with its own certificate minted \
            from the PKI directory's CA. Gateway mode (--gateways N) carries all vehicles over N gateway \
            connections, each serving one market. Units keep unacknowledged frames, honour the ack window, \
            reconnect with backoff and resend, like real firmware.
            """)

    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(help: "Server telemetry port.") var port = 7443
    @Option(help: "Name the server certificate must carry.") var serverName = "localhost"
    @Option(
        help: ArgumentHelp(
            "Send SNI <cc>.telemetry.DOMAIN per unit (its market), for SNI routing by a load balancer.",
            valueName: "DOMAIN"))
    var sniDomain: String?
    @Option(help: "PKI directory holding ca.crt and ca.key (the dev PKI horgosd creates, or horgosctl pki init's).")
    var pki = "./horgos-state/pki"
    @Option(help: "Number of simulated vehicles.") var vehicles = 100
    @Option(help: "Gateway connections carrying all vehicles (0 = one connection per vehicle).") var gateways = 0
    @Option(help: "Milliseconds between two readings of a vehicle (0 = as fast as ACKs allow).")
    var intervalMs = 1000
    @Option(help: "Records per TELEMETRY frame.") var recordsPerFrame = 1
    @Option(help: "Seconds to generate traffic (then drain: wait for every ACK).") var duration = 30.0
    @Option(help: "Fraction of connections dropped abruptly per minute (they reconnect and resend).")
    var churn = 0.0
    @Option(help: "Comma-separated regions to use (default: all 41).") var regions: String?
    @Option(help: "Local source addresses, e.g. 127.0.0.2-127.0.0.9, to go past the ephemeral port limit.")
    var sourceAddresses: String?
    @Option(help: "New connections per second while ramping up.") var connectRate = 2000
    @Option(help: "Seconds to wait for outstanding ACKs at the end.") var drainTimeout = 30.0
    @Option(help: "Event-loop threads (0 = one per core).") var threads = 0
    @Option(help: "Seed of the fleet (same seed, same VINs and tracks).") var seed: UInt64 = 1
    @Option(help: "First reconnect delay in ms (doubles to 30 s, with jitter).") var backoffMs = 1000
    @Option(help: "Protocol: native (Horgos frames on --port) or gbt32960 (GB/T 32960.3 on --gbt32960-port).")
    var `protocol` = "native"
    @Option(help: "GB/T 32960 listener port (with --protocol gbt32960).") var gbt32960Port = 7325
    @Option(help: "GB/T 32960 edition the units speak: 2016 (##) or 2025 ($$, with its data layout).")
    var gbtEdition = "2016"
    @Option(help: "GB/T 32960: realtime frames after which a unit reconnects and reissues what is unanswered.")
    var reconnectEvery = 0
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(help: "No progress line.") var quiet = false

    func validate() throws {
        guard vehicles > 0 else { throw ValidationError("--vehicles must be at least 1") }
        guard recordsPerFrame >= 1 && recordsPerFrame <= WireFormat.defaultMaxRecords else {
            throw ValidationError("--records-per-frame must be 1...\(WireFormat.defaultMaxRecords)")
        }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard ["2016", "2025"].contains(gbtEdition) else {
            throw ValidationError("--gbt-edition must be 2016 or 2025")
        }
        guard ["native", "gbt32960"].contains(`protocol`) else {
            throw ValidationError("--protocol must be native or gbt32960")
        }
        guard intervalMs >= 0 else { throw ValidationError("--interval-ms must be 0 or more") }
        if let regions {
            for code in regions.split(separator: ",") where SimulatedRegion.named(String(code)) == nil {
                throw ValidationError("--regions: \(code) is not one of the simulator's 41 regions")
            }
        }
    }

    func run() async throws {
        let authority: FleetPKI
        do {
            authority = try FleetPKI.authority(inDirectory: pki)
        } catch {
            FileHandle.standardError.write(Data(
                "horgos-sim: cannot read the CA in \(pki) (\(error)); start horgosd once or pass --pki DIR\n".utf8))
            throw ExitCode(2)
        }
        let credentials = try PKIFleetCredentials(authority: authority)
        if `protocol` == "gbt32960" {
            try await runGBT32960(credentials: credentials)
            return
        }
        var plan = FleetPlan(mode: gateways > 0 ? .gateways(gateways) : .vehicles, vehicleCount: vehicles, seed: seed)
        if let regions {
            plan.regions = regions.split(separator: ",").compactMap { SimulatedRegion.named(String($0)) }
        }
        if let sourceAddresses { plan.sourceAddresses = try Self.expand(sourceAddresses) }
        var settings = FleetSettings(host: host, port: port, serverName: serverName, reportIntervalMs: intervalMs,
                                     recordsPerFrame: recordsPerFrame, initialBackoffMs: backoffMs)
        settings.maxBackoffMs = max(backoffMs, 30_000)
        settings.sniDomain = sniDomain
        let runner = FleetRunner(plan: plan, settings: settings, credentials: credentials, threads: threads)
        let showProgress = !quiet && !json
        let report = try await runner.run(
            duration: .milliseconds(Int64(duration * 1000)), connectRatePerSecond: connectRate,
            churnPerMinute: churn, drainTimeout: .milliseconds(Int64(drainTimeout * 1000))
        ) { snapshot, elapsed in
            guard showProgress else { return }
            let line = String(
                format: "\r%5.0fs  connected %6d  frames acked %9d  records acked %10d  p99 ack %7.1f ms  errors %d ",
                elapsed, snapshot.connected, snapshot.framesAcked, snapshot.recordsAcked,
                Double(snapshot.ackLatencyMicros.p99) / 1000, snapshot.errors.values.reduce(0, +))
            FileHandle.standardError.write(Data(line.utf8))
        } phase: { phase, snapshot in
            // With --json, one machine-readable line per phase (Benchmarks/loadrun.sh samples the daemon's
            // CPU and disk writes at each, so handshakes and the drain stay out of the steady figures).
            guard json else { return }
            let line = "horgos-sim: phase \(phase.rawValue) records_acked=\(snapshot.recordsAcked) "
                + "frames_acked=\(snapshot.framesAcked)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.table(report))
        }
        if report.outstandingFrames > 0 || !report.totals.errors.isEmpty { throw ExitCode(1) }
    }

    /// Expands `127.0.0.2-127.0.0.9` or a comma list into addresses.
    static func expand(_ text: String) throws -> [String] {
        var out: [String] = []
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-")
            if ends.count == 2 {
                let a = ends[0].split(separator: "."), b = ends[1].split(separator: ".")
                guard a.count == 4, b.count == 4, a[0..<3] == b[0..<3], let first = Int(a[3]), let last = Int(b[3]),
                      first <= last else { throw ValidationError("--source-addresses: cannot read \(part)") }
                for host in first...last { out.append(a[0..<3].joined(separator: ".") + ".\(host)") }
            } else {
                out.append(String(part))
            }
        }
        return out
    }

    static func table(_ r: FleetReport) -> String {
        let t = r.totals
        let rows: [(String, String)] = [
            ("mode", "\(r.mode), \(r.vehicles) vehicles over \(r.connections) connections"),
            ("duration", String(format: "%.1f s", r.seconds)),
            ("frames acked", "\(t.framesAcked)  (\(String(format: "%.0f", r.framesPerSecond))/s)"),
            ("records acked", "\(t.recordsAcked)  (\(String(format: "%.0f", r.recordsPerSecond))/s)"),
            ("records rejected (horizon)", "\(t.recordsRejected)"),
            ("ack latency p50 / p99 / p99.9 / max",
             String(format: "%.2f / %.2f / %.2f / %.2f ms", Double(t.ackLatencyMicros.p50) / 1000,
                    Double(t.ackLatencyMicros.p99) / 1000, Double(t.ackLatencyMicros.p999) / 1000,
                    Double(t.ackLatencyMicros.max) / 1000)),
            ("  steady state (all connected)",
             String(format: "%.2f / %.2f / %.2f / %.2f ms", Double(t.steadyAckLatencyMicros.p50) / 1000,
                    Double(t.steadyAckLatencyMicros.p99) / 1000, Double(t.steadyAckLatencyMicros.p999) / 1000,
                    Double(t.steadyAckLatencyMicros.max) / 1000)),
            ("connections (peak)", "\(t.peakConnected)"),
            ("connects / disconnects", "\(t.connects) / \(t.disconnects)"),
            ("frames resent after reconnect", "\(t.resentFrames)"),
            ("handshake failures", "\(t.handshakeFailures)"),
            ("errors", t.errors.isEmpty ? "0" : t.errors.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }
                .joined(separator: " ")),
            ("outstanding frames at end", "\(r.outstandingFrames)"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
            .joined(separator: "\n")
    }
}

