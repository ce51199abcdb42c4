extension GBT32960RealtimeReport {
    /// The values whose raw value is outside its `GBT32960Range` (not a marker): what the block views
    /// read as not available although the unit sent a number. The listener counts them
    /// (`horgos_gbt32960_values_out_of_range_total{field}`); a list (cells, probes) counts once per
    /// report. Reads every field once; allocates nothing.
    public var valuesOutOfRange: GBT32960OutOfRange {
        var out = GBT32960OutOfRange()
        let is2025 = edition == .edition2025
        if let v = vehicle {
            let b = v.bytes
            out.check(.vehicleState, b.byte(0), GBT32960Range.vehicleState)
            out.check(.chargingState, b.byte(1), GBT32960Range.chargingState)
            out.check(.runningMode, b.byte(2), GBT32960Range.runningMode)
            out.check(.speed, b.word(3), GBT32960Range.speed)
            out.check(.odometer, b.dword(5), GBT32960Range.odometer)
            out.check(.totalVoltage, b.word(9), GBT32960Range.voltage)
            out.check(.totalCurrent, b.word(11), GBT32960Range.current(edition))
            out.check(.soc, b.byte(13), GBT32960Range.soc)
            out.check(.dcdcState, b.byte(14), GBT32960Range.dcdcState)
            out.check(.insulation, b.word(16), GBT32960Range.insulation)
            if !is2025 {
                out.check(.acceleratorPedal, b.byte(18), GBT32960Range.pedal)
                let brake = b.byte(19)
                if brake != GBT32960Range.brakeOnWithoutTravel { out.check(.brakePedal, brake, GBT32960Range.pedal) }
            }
        }
        if let motors = driveMotors {
            for index in 0..<motors.count {
                let m = motors[index]
                let b = m.bytes
                out.check(.motorState, b.byte(1), GBT32960Range.motorState)
                out.check(.motorControllerTemperature, b.byte(2), GBT32960Range.temperature)
                out.check(.motorSpeed, b.word(3), GBT32960Range.motorSpeed)
                if is2025 {
                    out.check(.motorTorque, b.dword(5), GBT32960Range.motorTorque2025)
                    out.check(.motorTemperature, b.byte(9), GBT32960Range.temperature)
                } else {
                    out.check(.motorTorque, b.word(5), GBT32960Range.motorTorque2016)
                    out.check(.motorTemperature, b.byte(7), GBT32960Range.temperature)
                    out.check(.motorVoltage, b.word(8), GBT32960Range.motorVoltage)
                    out.check(.motorCurrent, b.word(10), GBT32960Range.current2016)
                }
            }
        }
        if let f = fuelCell { Self.check(f, &out) }
        if let e = engine {
            let b = e.bytes
            if is2025 {
                out.check(.crankshaftSpeed, b.word(0), GBT32960Range.crankshaft)
            } else {
                out.check(.engineState, b.byte(0), GBT32960Range.engineState)
                out.check(.crankshaftSpeed, b.word(1), GBT32960Range.crankshaft)
                out.check(.fuelRate, b.word(3), GBT32960Range.sixtyThousand)
            }
        }
        if let p = position {
            if is2025 { out.check(.coordinateSystem, p.bytes.byte(1), GBT32960Range.coordinateSystem) }
            out.check(.longitude, p.longitudeRaw, GBT32960Range.longitude)
            out.check(.latitude, p.latitudeRaw, GBT32960Range.latitude)
        }
        if let x = extremes { Self.check(x, &out) }
        if let a = alarms { out.check(.alarmLevel, a.maxLevelRaw, GBT32960Range.alarmLevel) }
        if let cells = cellVoltages {
            for subsystem in cells {
                out.check(.subsystemVoltage, subsystem.voltageRaw, GBT32960Range.voltage)
                out.check(.subsystemCurrent, subsystem.currentRaw, GBT32960Range.current(edition))
                for index in 0..<subsystem.frameCellCount {
                    out.check(.cellVoltage, subsystem.cellVoltageRaw(index), GBT32960Range.cellVoltage)
                }
            }
        }
        if let probes = probeTemperatures {
            for subsystem in probes {
                for index in 0..<subsystem.probeCount {
                    out.check(.probeTemperature, subsystem.temperatureRaw(index), GBT32960Range.temperature)
                }
            }
        }
        return out
    }

    static func check(_ f: GBT32960FuelCell, _ out: inout GBT32960OutOfRange) {
        let b = f.bytes
        out.check(.fuelCellVoltage, f.voltageRaw, GBT32960Range.fuelCellElectrical)
        out.check(.fuelCellCurrent, f.currentRaw, GBT32960Range.fuelCellElectrical)
        out.check(.fuelConsumption, f.consumptionRaw, GBT32960Range.sixtyThousand)
        for index in 0..<f.probeCount {
            out.check(.fuelCellProbeTemperature, f.probeTemperatureRaw(index), GBT32960Range.fuelCellProbeTemperature)
        }
        let rest = 8 + f.probeCount
        out.check(.hydrogenMaxTemperature, f.hydrogenMaxTemperatureRaw, GBT32960Range.hydrogenTemperature)
        out.check(.hydrogenTemperatureProbe, b.byte(rest + 2), GBT32960Range.hydrogenSensor)
        out.check(.hydrogenMaxConcentration, f.hydrogenMaxConcentrationRaw, GBT32960Range.sixtyThousand)
        out.check(.hydrogenConcentrationSensor, b.byte(rest + 5), GBT32960Range.hydrogenSensor)
        out.check(.hydrogenMaxPressure, f.hydrogenMaxPressureRaw, GBT32960Range.hydrogenPressure)
        out.check(.hydrogenPressureSensor, b.byte(rest + 8), GBT32960Range.hydrogenSensor)
        out.check(.fuelCellDCDCState, b.byte(rest + 9), GBT32960Range.dcdcState)
    }

    static func check(_ x: GBT32960Extremes, _ out: inout GBT32960OutOfRange) {
        let b = x.bytes
        out.check(.maxVoltageSubsystem, b.byte(0), GBT32960Range.extremeNumber)
        out.check(.maxVoltageCell, b.byte(1), GBT32960Range.extremeNumber)
        out.check(.maxCellVoltage, b.word(2), GBT32960Range.extremeCellVoltage)
        out.check(.minVoltageSubsystem, b.byte(4), GBT32960Range.extremeNumber)
        out.check(.minVoltageCell, b.byte(5), GBT32960Range.extremeNumber)
        out.check(.minCellVoltage, b.word(6), GBT32960Range.extremeCellVoltage)
        out.check(.maxTemperatureSubsystem, b.byte(8), GBT32960Range.extremeNumber)
        out.check(.maxTemperatureProbe, b.byte(9), GBT32960Range.extremeNumber)
        out.check(.maxTemperature, b.byte(10), GBT32960Range.temperature)
        out.check(.minTemperatureSubsystem, b.byte(11), GBT32960Range.extremeNumber)
        out.check(.minTemperatureProbe, b.byte(12), GBT32960Range.extremeNumber)
        out.check(.minTemperature, b.byte(13), GBT32960Range.temperature)
    }
}
