import ArgumentParser
import Foundation
import HorgosSimulator

extension HorgosSim {
    /// `--protocol gbt32960`: vehicles (or --gateways N platforms) speaking GB/T 32960.3 to the
    /// GB/T 32960 listener; exit 1 when a frame stayed unanswered or an error answer came back.
    func runGBT32960(credentials: PKIFleetCredentials) async throws {
        var settings = GBT32960FleetSettings()
        settings.host = host
        settings.port = gbt32960Port
        settings.serverName = serverName
        settings.vehicles = vehicles
        settings.platforms = gateways
        settings.intervalMs = max(1000, intervalMs)
        settings.reconnectEvery = reconnectEvery
        settings.seed = seed
        settings.editionYear = gbtEdition == "2025" ? 2025 : 2016
        if let regions {
            settings.regions = regions.split(separator: ",").compactMap { SimulatedRegion.named(String($0)) }
        }
        let runner = GBT32960FleetRunner(settings: settings, credentials: credentials, threads: threads)
        let report = try await runner.run(
            duration: .milliseconds(Int64(duration * 1000)), drainTimeout: .milliseconds(Int64(drainTimeout * 1000)))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            let rows: [(String, String)] = [
                ("protocol", "GB/T 32960.3-\(gbtEdition), \(report.mode)"),
                ("vehicles / connections", "\(report.vehicles) / \(report.connections)"),
                ("duration", String(format: "%.1f s", report.seconds)),
                ("frames sent", "\(report.framesSent)"),
                ("frames answered success", "\(report.framesAnswered)  (\(String(format: "%.0f", report.framesPerSecond))/s)"),
                ("reissued after reconnect", "\(report.reissued) (\(report.reconnects) reconnects)"),
                ("logins / heartbeats", "\(report.logins) / \(report.heartbeats)"),
                ("answer latency p99", String(format: "%.2f ms", report.answerLatencyP99Ms)),
                ("errors", report.errors.isEmpty ? "0" : report.errors.map { "\($0)=\($1)" }.sorted().joined(separator: " ")),
                ("outstanding frames at end", "\(report.outstandingFrames)"),
            ]
            let width = rows.map(\.0.count).max() ?? 0
            print(rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n"))
        }
        if report.outstandingFrames > 0 || !report.errors.isEmpty { throw ExitCode(1) }
    }
}
