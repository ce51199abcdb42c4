import Foundation
import HorgosSimulator
import HorgosStore
import HorgosWire

/// The GB/T 32960 share of the demo fleet: simulated units on the GB/T 32960 listener, then a
/// battery-health summary of them read from the shards.
struct GBT32960DemoShare {
    let vehicles: Int
    let port: Int
    let interval: Double
    let credentials: PKIFleetCredentials

    func run(duration: Double) async throws -> GBT32960FleetReport? {
        guard vehicles > 0 else { return nil }
        var settings = GBT32960FleetSettings()
        settings.port = port
        settings.vehicles = vehicles
        settings.intervalMs = max(1000, Int(interval * 1000))
        settings.reconnectEvery = 20
        settings.seed = 32960
        return try await GBT32960FleetRunner(settings: settings, credentials: credentials)
            .run(duration: .milliseconds(Int64(duration * 1000)), drainTimeout: .seconds(30))
    }

    static func summary(_ report: GBT32960FleetReport, stateDirectory: String) -> GBT32960DemoSummary {
        var worst: [BatteryHealthCommand.VehicleSummary] = []
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for region in Region.defaultSet {
            let reader = ShardReader(stateDirectory: stateDirectory, region: region)
            guard let samples = try? reader.batteryHealth(nil, fromMs: now - 3_600_000, toMs: now + 60_000) else { continue }
            worst += BatteryHealthCommand.summaries(samples.map { (region, $0) })
        }
        worst.sort { ($0.maxCellSpreadMv ?? -1) > ($1.maxCellSpreadMv ?? -1) }
        return GBT32960DemoSummary(
            vehicles: report.vehicles, framesAnswered: report.framesAnswered, reissued: report.reissued,
            reconnects: report.reconnects, answerP99Ms: report.answerLatencyP99Ms, errors: report.errors,
            worstBatteries: Array(worst.prefix(3)))
    }
}

/// What the demo's GB/T 32960 units did, for the table and `--json`.
struct GBT32960DemoSummary: Codable {
    var vehicles: Int
    var framesAnswered: Int
    var reissued: Int
    var reconnects: Int
    var answerP99Ms: Double
    var errors: [String: Int]
    var worstBatteries: [BatteryHealthCommand.VehicleSummary]

    var lines: [String] {
        var lines = [
            "GB/T 32960 units: \(vehicles) vehicles, \(framesAnswered) realtime frames answered success after "
                + "storing, \(reissued) reissued after \(reconnects) reconnects, answer p99 "
                + String(format: "%.1f ms", answerP99Ms) + ", errors \(errors.isEmpty ? "0" : "\(errors)")",
            "  worst cell-voltage spread (horgosctl battery-health):",
        ]
        for v in worstBatteries {
            lines.append(
                "    \(v.vin) \(v.region)  spread \(v.maxCellSpreadMv.map(String.init) ?? "-") mV, "
                    + "insulation \(v.lastInsulationKohm.map(String.init) ?? "-") kΩ")
        }
        return lines
    }
}
