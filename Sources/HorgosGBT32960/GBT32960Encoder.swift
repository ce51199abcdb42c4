/// Writes GB/T 32960 frames: header, data unit, BCC.
///
/// Appends to a caller-owned byte array (the answers of the listener, the simulator's frames, the
/// tests' and benchmark's inputs). Values are written exactly as given.
public enum GBT32960Encoder {
    /// Appends one frame whose data unit is written by `body` (which appends to the same array).
    @inlinable
    public static func appendFrame(
        edition: GBT32960Edition = .edition2016, command: GBT32960Command,
        response: GBT32960ResponseFlag = .command, vin: GBT32960VINField,
        encryption: GBT32960Encryption = .none, to out: inout [UInt8], dataUnit body: (inout [UInt8]) -> Void = { _ in }
    ) {
        let start = out.count
        out.append(edition.rawValue)
        out.append(edition.rawValue)
        out.append(command.rawValue)
        out.append(response.rawValue)
        vin.withUnsafeBytes { out.append(contentsOf: $0) }
        out.append(encryption.rawValue)
        out.append(0)
        out.append(0)  // length, patched below
        body(&out)
        let length = out.count - start - GBT32960Format.headerSize
        precondition(length <= 0xFFFF, "data unit of \(length) bytes")
        out[start + 22] = UInt8(truncatingIfNeeded: length >> 8)
        out[start + 23] = UInt8(truncatingIfNeeded: length)
        let bcc = out.withUnsafeBytes { GBT32960Decoder.bcc(UnsafeRawBufferPointer(rebasing: $0[(start + 2)...])) }
        out.append(bcc)
    }

    /// Appends the answer to a request: same edition, command and VIN field, the given response
    /// flag, no encryption, and the data unit `body` writes.
    @inlinable
    public static func appendAnswer(
        to request: GBT32960FrameHeader, response: GBT32960ResponseFlag, to out: inout [UInt8],
        dataUnit body: (inout [UInt8]) -> Void = { _ in }
    ) {
        appendFrame(
            edition: request.edition, command: request.command, response: response, vin: request.vinField,
            to: &out, dataUnit: body)
    }

    /// Appends a vehicle login data unit.
    public static func appendVehicleLogin(
        time: GBT32960Time, sequence: UInt16, iccid: [UInt8], subsystemCodes: [[UInt8]], to out: inout [UInt8]
    ) {
        out += time.bytes
        out.appendBE(sequence)
        out += iccid.prefix(20) + [UInt8](repeating: 0x30, count: max(0, 20 - iccid.count))
        out.append(UInt8(subsystemCodes.count))
        out.append(UInt8(subsystemCodes.first?.count ?? 0))
        for code in subsystemCodes { out += code }
    }

    /// Appends a 2025 vehicle login data unit: one entry of `packCodes` per BMS, each code 24 bytes
    /// (shorter codes are padded with ASCII `0`).
    public static func appendVehicleLogin2025(
        time: GBT32960Time, sequence: UInt16, iccid: [UInt8], packCodes: [[[UInt8]]], to out: inout [UInt8]
    ) {
        out += time.bytes
        out.appendBE(sequence)
        out += iccid.prefix(20) + [UInt8](repeating: 0x30, count: max(0, 20 - iccid.count))
        out.append(UInt8(packCodes.count))
        for codes in packCodes { out.append(UInt8(codes.count)) }
        let size = GBT32960VehicleLogin.packCodeSize2025
        for codes in packCodes {
            for code in codes { out += code.prefix(size) + [UInt8](repeating: 0x30, count: max(0, size - code.count)) }
        }
    }

    /// Appends a logout (vehicle or platform) data unit.
    public static func appendLogout(time: GBT32960Time, sequence: UInt16, to out: inout [UInt8]) {
        out += time.bytes
        out.appendBE(sequence)
    }

    /// Appends a platform login data unit (user name and password zero-padded to 12 and 20 bytes).
    public static func appendPlatformLogin(
        time: GBT32960Time, sequence: UInt16, username: String, password: String, encryptionRule: UInt8 = 0x01,
        to out: inout [UInt8]
    ) {
        out += time.bytes
        out.appendBE(sequence)
        for (text, size) in [(username, 12), (password, 20)] {
            let bytes = Array(text.utf8.prefix(size))
            out += bytes + [UInt8](repeating: 0, count: size - bytes.count)
        }
        out.append(encryptionRule)
    }
}

extension Array where Element == UInt8 {
    @inlinable
    mutating func appendBE(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
    @inlinable
    mutating func appendBE(_ value: UInt32) {
        appendBE(UInt16(truncatingIfNeeded: value >> 16))
        appendBE(UInt16(truncatingIfNeeded: value))
    }
}

/// The values of a realtime report, raw as on the wire, for building frames (simulator, tests,
/// benchmark). A nil block is left out; an empty list is a block with a count of zero.
///
/// `edition` chooses the layout: a 2025 data unit numbers its types 0x06 alarms, 0x07 cells,
/// 0x08 probes, leaves out what that edition does not have (pedals, motor voltage and current,
/// engine state and fuel rate, fuel cell, extreme values, cell split fields) and ends with the
/// signature (`signature`, which must then be set).
public struct GBT32960RealtimeValues: Sendable, Hashable {
    public struct Vehicle: Sendable, Hashable {
        public var state: UInt8 = 1, charging: UInt8 = 3, mode: UInt8 = 1
        public var speed: UInt16 = 0, odometer: UInt32 = 0, voltage: UInt16 = 0, current: UInt16 = 10_000
        public var soc: UInt8 = 0, dcdc: UInt8 = 1, gear: UInt8 = 0, insulation: UInt16 = 0
        public var accelerator: UInt8 = 0, brake: UInt8 = 0
        public init() {}
    }
    public struct Motor: Sendable, Hashable {
        public var number: UInt8 = 1, state: UInt8 = 1, controllerTemperature: UInt8 = 40
        /// The torque as sent: a WORD in 2016 (written truncated), a DWORD in 2025.
        public var speed: UInt16 = 20_000, torque: UInt32 = 20_000, temperature: UInt8 = 40
        public var voltage: UInt16 = 0, current: UInt16 = 10_000
        public init() {}
    }
    public struct FuelCell: Sendable, Hashable {
        public var voltage: UInt16 = 0, current: UInt16 = 0, consumption: UInt16 = 0, probes: [UInt8] = []
        public var h2MaxTemperature: UInt16 = 0, h2TemperatureProbe: UInt8 = 1
        public var h2MaxConcentration: UInt16 = 0, h2ConcentrationSensor: UInt8 = 1
        public var h2MaxPressure: UInt16 = 0, h2PressureSensor: UInt8 = 1, dcdc: UInt8 = 1
        public init() {}
    }
    public struct Engine: Sendable, Hashable {
        public var state: UInt8 = 2, crankshaft: UInt16 = 0, fuelRate: UInt16 = 0
        public init() {}
    }
    public struct Position: Sendable, Hashable {
        public var status: UInt8 = 0, longitude: UInt32 = 0, latitude: UInt32 = 0
        /// 2025 only: 1 WGS-84, 2 GCJ-02, 3 other.
        public var coordinateSystem: UInt8 = 1
        public init() {}
    }
    public struct Extremes: Sendable, Hashable {
        public var maxVoltageSubsystem: UInt8 = 1, maxVoltageCell: UInt8 = 1, maxVoltage: UInt16 = 0
        public var minVoltageSubsystem: UInt8 = 1, minVoltageCell: UInt8 = 1, minVoltage: UInt16 = 0
        public var maxTemperatureSubsystem: UInt8 = 1, maxTemperatureProbe: UInt8 = 1, maxTemperature: UInt8 = 40
        public var minTemperatureSubsystem: UInt8 = 1, minTemperatureProbe: UInt8 = 1, minTemperature: UInt8 = 40
        public init() {}
    }
    public struct Alarms: Sendable, Hashable {
        public var maxLevel: UInt8 = 0, flags: UInt32 = 0
        /// Energy storage, drive motor, engine, other.
        public var faults: [[UInt32]] = [[], [], [], []]
        /// 2025 only: (general alarm bit, level) pairs.
        public var levelled: [[UInt8]] = []
        public init() {}
    }
    public struct CellSubsystem: Sendable, Hashable {
        public var number: UInt8 = 1, voltage: UInt16 = 0, current: UInt16 = 10_000
        public var totalCells: UInt16 = 0, firstCell: UInt16 = 1, cells: [UInt16] = []
        public init() {}
    }
    public struct ProbeSubsystem: Sendable, Hashable {
        public var number: UInt8 = 1, temperatures: [UInt8] = []
        public init() {}
    }
    /// The 2025 signature: algorithm (1 SM2, 2 RSA, 3 ECC), r and s as sent.
    public struct Signature: Sendable, Hashable {
        public var algorithm: UInt8 = 2, r: [UInt8] = [], s: [UInt8] = []
        public init(algorithm: UInt8 = 2, r: [UInt8] = [], s: [UInt8] = []) {
            (self.algorithm, self.r, self.s) = (algorithm, r, s)
        }
    }

    public var edition: GBT32960Edition = .edition2016
    public var signature: Signature?

    public var time: GBT32960Time
    public var vehicle: Vehicle?
    public var motors: [Motor]?
    public var fuelCell: FuelCell?
    public var engine: Engine?
    public var position: Position?
    public var extremes: Extremes?
    public var alarms: Alarms?
    public var cellSubsystems: [CellSubsystem]?
    public var probeSubsystems: [ProbeSubsystem]?

    public init(time: GBT32960Time, edition: GBT32960Edition = .edition2016) {
        self.time = time
        self.edition = edition
    }

    /// Appends the data unit: time, then the blocks in type order (2025: then the signature), in
    /// `edition`'s layout.
    public func appendDataUnit(to out: inout [UInt8]) {
        let is2025 = edition == .edition2025
        out += time.bytes
        if let v = vehicle {
            out += [0x01, v.state, v.charging, v.mode]
            out.appendBE(v.speed)
            out.appendBE(v.odometer)
            out.appendBE(v.voltage)
            out.appendBE(v.current)
            out += [v.soc, v.dcdc, v.gear]
            out.appendBE(v.insulation)
            if !is2025 { out += [v.accelerator, v.brake] }
        }
        if let motors {
            out += [0x02, UInt8(motors.count)]
            for m in motors {
                out += [m.number, m.state, m.controllerTemperature]
                out.appendBE(m.speed)
                if is2025 {
                    out.appendBE(m.torque)
                    out.append(m.temperature)
                } else {
                    out.appendBE(UInt16(truncatingIfNeeded: m.torque))
                    out.append(m.temperature)
                    out.appendBE(m.voltage)
                    out.appendBE(m.current)
                }
            }
        }
        if !is2025, let f = fuelCell {
            out.append(0x03)
            out.appendBE(f.voltage)
            out.appendBE(f.current)
            out.appendBE(f.consumption)
            out.appendBE(UInt16(f.probes.count))
            out += f.probes
            out.appendBE(f.h2MaxTemperature)
            out.append(f.h2TemperatureProbe)
            out.appendBE(f.h2MaxConcentration)
            out.append(f.h2ConcentrationSensor)
            out.appendBE(f.h2MaxPressure)
            out += [f.h2PressureSensor, f.dcdc]
        }
        if let e = engine {
            out += is2025 ? [0x04] : [0x04, e.state]
            out.appendBE(e.crankshaft)
            if !is2025 { out.appendBE(e.fuelRate) }
        }
        if let p = position {
            out += is2025 ? [0x05, p.status, p.coordinateSystem] : [0x05, p.status]
            out.appendBE(p.longitude)
            out.appendBE(p.latitude)
        }
        if !is2025, let x = extremes {
            out += [0x06, x.maxVoltageSubsystem, x.maxVoltageCell]
            out.appendBE(x.maxVoltage)
            out += [x.minVoltageSubsystem, x.minVoltageCell]
            out.appendBE(x.minVoltage)
            out += [x.maxTemperatureSubsystem, x.maxTemperatureProbe, x.maxTemperature]
            out += [x.minTemperatureSubsystem, x.minTemperatureProbe, x.minTemperature]
        }
        if let a = alarms {
            out += [is2025 ? 0x06 : 0x07, a.maxLevel]
            out.appendBE(a.flags)
            for index in 0..<4 {
                let list = index < a.faults.count ? a.faults[index] : []
                out.append(UInt8(list.count))
                for code in list { out.appendBE(code) }
            }
            if is2025 {
                out.append(UInt8(a.levelled.count))
                for pair in a.levelled { out += [pair.first ?? 0, pair.last ?? 0] }
            }
        }
        if let cellSubsystems {
            out += [is2025 ? 0x07 : 0x08, UInt8(cellSubsystems.count)]
            for s in cellSubsystems {
                out.append(s.number)
                out.appendBE(s.voltage)
                out.appendBE(s.current)
                if is2025 {
                    out.appendBE(UInt16(s.cells.count))
                } else {
                    out.appendBE(s.totalCells)
                    out.appendBE(s.firstCell)
                    out.append(UInt8(s.cells.count))
                }
                for cell in s.cells { out.appendBE(cell) }
            }
        }
        if let probeSubsystems {
            out += [is2025 ? 0x08 : 0x09, UInt8(probeSubsystems.count)]
            for s in probeSubsystems {
                out.append(s.number)
                out.appendBE(UInt16(s.temperatures.count))
                out += s.temperatures
            }
        }
        if is2025 {
            let signature = signature ?? Signature()
            out += [0xFF, signature.algorithm]
            out.appendBE(UInt16(signature.r.count))
            out += signature.r
            out.appendBE(UInt16(signature.s.count))
            out += signature.s
        }
    }
}
