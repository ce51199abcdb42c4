import Foundation
import HorgosStore

/// The GB/T 32960 section of `horgosctl vehicle VIN`: what the unit's newest GB/T sample said
/// beyond Horgos's own record (vehicle and charging state, DC-DC, insulation, extremes with their
/// cells and probes, motors, cell and probe spreads, fault codes).
enum GBT32960VehicleSection {
    static let vehicleStates = [1: "started", 2: "off", 3: "other"]
    static let chargingStates = [1: "parked charging", 2: "driving charging", 3: "not charging", 4: "charging finished"]
    static let modes = [1: "electric", 2: "hybrid", 3: "fuel"]
    static let onOff = [1: "working", 2: "off"]
    static let motorStates = [1: "consuming", 2: "generating", 3: "off", 4: "ready"]
    static let faultSources = [1: "energy storage", 2: "drive motor", 3: "engine", 4: "other"]

    static func name(_ value: Int?, _ names: [Int: String]) -> String {
        guard let value else { return "-" }
        return names[value] ?? "\(value)"
    }

    /// The gear byte as GB/T 32960.3-2016 Annex A (Table A.1) defines it: bits 0–3 the gear
    /// (0 neutral, 1–12, 13 R, 14 D, 15 P), bit 4 braking force, bit 5 driving force; in a 2025
    /// frame bit 7 says the gear position is invalid.
    static func gear(_ raw: Int) -> String {
        let nibble = raw & 0x0F
        let position =
            switch nibble {
            case 0: "neutral"
            case 13: "R"
            case 14: "D"
            case 15: "P"
            default: "gear \(nibble)"
            }
        var parts = [position]
        if raw & 0x10 != 0 { parts.append("braking force") }
        if raw & 0x20 != 0 { parts.append("driving force") }
        if raw & 0x80 != 0 { parts.append("position invalid (2025)") }
        return parts.joined(separator: ", ") + " (byte 0x" + String(raw, radix: 16, uppercase: true) + ")"
    }

    static func print(_ d: GBT32960Details) {
        Console.line()
        Console.line(
            Console.bold("GB/T 32960") + " sample of \(Format.time(d.timestampMs))"
                + (d.command == 3 ? " (reissued)" : ""))
        let where_ = { (subsystem: Int?, number: Int?) -> String in
            "subsystem \(Format.optional(subsystem)) #\(Format.optional(number))"
        }
        var rows: [(String, String)] = [
            ("vehicle", "\(name(d.vehicleState, vehicleStates)), \(name(d.runningMode, modes))"),
            ("charging", name(d.chargingState, chargingStates)),
            ("DC-DC", name(d.dcdcState, onOff)),
            ("gear", d.gear.map(gear) ?? "-"),
            ("insulation", Format.optional(d.insulationKohm, suffix: " kΩ")),
            (
                "max cell voltage",
                "\(Format.optional(d.maxCellMv, scale: 3, suffix: " V")) (\(where_(d.maxCellSubsystem, d.maxCellNumber)))"
            ),
            (
                "min cell voltage",
                "\(Format.optional(d.minCellMv, scale: 3, suffix: " V")) (\(where_(d.minCellSubsystem, d.minCellNumber)))"
            ),
            ("cell voltage spread", "\(Format.optional(d.cellSpreadMv, suffix: " mV")) over \(d.cellsReported) cell(s)"),
            (
                "probe temperatures",
                "max \(Format.optional(d.maxTemperatureC, suffix: " °C")) (probe \(Format.optional(d.maxTemperatureProbe))), "
                    + "min \(Format.optional(d.minTemperatureC, suffix: " °C")) (probe \(Format.optional(d.minTemperatureProbe))), "
                    + "spread \(Format.optional(d.probeSpreadC, suffix: " °C")) over \(d.probesReported) probe(s)"
            ),
        ]
        for motor in d.motors {
            rows.append(
                (
                    "motor \(motor.number)",
                    "\(name(motor.state, motorStates)), \(Format.optional(motor.speedRpm, suffix: " r/min")), "
                        + "\(Format.optional(motor.torqueDnm, scale: 1, suffix: " N·m")), "
                        + "\(Format.optional(motor.temperatureC, suffix: " °C")) (controller "
                        + "\(Format.optional(motor.controllerTemperatureC, suffix: " °C")))"
                ))
        }
        rows.append(
            (
                "fault codes",
                d.faults.isEmpty
                    ? "none"
                    : Console.red(
                        d.faults.map { "\(name($0.source, faultSources)) 0x" + String($0.code, radix: 16, uppercase: true) }
                            .joined(separator: ", "))
            ))
        let width = rows.map(\.0.count).max() ?? 0
        for (key, value) in rows {
            Console.line(Console.bold(key.padding(toLength: width, withPad: " ", startingAt: 0)) + "  " + value)
        }
    }
}
