extension GBT32960RealtimeValues {
    /// The raw values of a decoded report (custom blocks dropped): re-encoding them gives the same
    /// standard blocks in type order. Allocates; for tests, tools and the fuzzer, not the hot path.
    public init(_ r: GBT32960RealtimeReport) {
        self.init(time: r.time, edition: r.edition)
        let is2025 = r.edition == .edition2025
        if let v = r.vehicle {
            var out = Vehicle()
            (out.state, out.charging, out.mode) = (v.bytes.byte(0), v.bytes.byte(1), v.bytes.byte(2))
            (out.speed, out.odometer, out.voltage, out.current) = (v.speedRaw, v.odometerRaw, v.totalVoltageRaw, v.totalCurrentRaw)
            (out.soc, out.dcdc, out.gear, out.insulation) = (v.bytes.byte(13), v.bytes.byte(14), v.gear, v.insulationRaw)
            if !is2025 { (out.accelerator, out.brake) = (v.bytes.byte(18), v.bytes.byte(19)) }
            vehicle = out
        }
        if let motors = r.driveMotors {
            self.motors = (0..<motors.count).map { index in
                let m = motors[index]
                var out = Motor()
                (out.number, out.state, out.controllerTemperature) = (m.number, m.bytes.byte(1), m.controllerTemperatureRaw)
                (out.speed, out.torque, out.temperature) = (m.speedRaw, m.torqueRaw, m.temperatureRaw)
                if !is2025 { (out.voltage, out.current) = (m.inputVoltageRaw, m.dcBusCurrentRaw) }
                return out
            }
        }
        if let f = r.fuelCell {
            var out = FuelCell()
            (out.voltage, out.current, out.consumption) = (f.voltageRaw, f.currentRaw, f.consumptionRaw)
            out.probes = (0..<f.probeCount).map { f.probeTemperatureRaw($0) }
            let rest = 8 + f.probeCount
            (out.h2MaxTemperature, out.h2TemperatureProbe) = (f.hydrogenMaxTemperatureRaw, f.bytes.byte(rest + 2))
            (out.h2MaxConcentration, out.h2ConcentrationSensor) = (f.hydrogenMaxConcentrationRaw, f.bytes.byte(rest + 5))
            (out.h2MaxPressure, out.h2PressureSensor, out.dcdc) =
                (f.hydrogenMaxPressureRaw, f.bytes.byte(rest + 8), f.bytes.byte(rest + 9))
            fuelCell = out
        }
        if let e = r.engine {
            var out = Engine()
            if is2025 {
                out.crankshaft = e.crankshaftRaw
            } else {
                (out.state, out.crankshaft, out.fuelRate) = (e.bytes.byte(0), e.crankshaftRaw, e.fuelRateRaw)
            }
            engine = out
        }
        if let p = r.position {
            var out = Position()
            (out.status, out.longitude, out.latitude) = (p.status, p.longitudeRaw, p.latitudeRaw)
            if is2025 { out.coordinateSystem = p.bytes.byte(1) }
            position = out
        }
        if let x = r.extremes {
            var out = Extremes()
            let b = x.bytes
            (out.maxVoltageSubsystem, out.maxVoltageCell, out.maxVoltage) = (b.byte(0), b.byte(1), b.word(2))
            (out.minVoltageSubsystem, out.minVoltageCell, out.minVoltage) = (b.byte(4), b.byte(5), b.word(6))
            (out.maxTemperatureSubsystem, out.maxTemperatureProbe, out.maxTemperature) = (b.byte(8), b.byte(9), b.byte(10))
            (out.minTemperatureSubsystem, out.minTemperatureProbe, out.minTemperature) = (b.byte(11), b.byte(12), b.byte(13))
            extremes = out
        }
        if let a = r.alarms {
            var out = Alarms()
            (out.maxLevel, out.flags) = (a.maxLevelRaw, a.generalFlags)
            out.faults = GBT32960FaultSource.allCases.map { Array(a.faults($0)) }
            out.levelled = a.levelledAlarms.map { list in list.map { [$0.alarm, $0.level] } } ?? []
            alarms = out
        }
        if let cells = r.cellVoltages {
            cellSubsystems = cells.map { s in
                var out = CellSubsystem()
                (out.number, out.voltage, out.current) = (s.number, s.voltageRaw, s.currentRaw)
                if !is2025 { (out.totalCells, out.firstCell) = (UInt16(s.totalCells), UInt16(s.firstCell)) }
                out.cells = (0..<s.frameCellCount).map { s.cellVoltageRaw($0) }
                return out
            }
        }
        if let probes = r.probeTemperatures {
            probeSubsystems = probes.map { s in
                var out = ProbeSubsystem()
                out.number = s.number
                out.temperatures = Array(s.probeBytes)
                return out
            }
        }
        if let sig = r.signature {
            signature = Signature(algorithm: sig.algorithm, r: Array(sig.r), s: Array(sig.s))
        }
    }
}
