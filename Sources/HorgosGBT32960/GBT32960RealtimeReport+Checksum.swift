extension GBT32960RealtimeReport {
    /// Reads every value of every block through the views and sums them: the work a consumer does,
    /// for the benchmark, the allocation test and the fuzzer (a sum keeps the reads from being
    /// optimised away). Allocates nothing.
    @inlinable
    public var checksumOfEveryValue: Int {
        Int(time.second) &+ Self.readVehicleAndMotors(self) &+ Self.readFuelCellEngineAndPosition(self)
            &+ Self.readExtremesAndAlarms(self) &+ Self.readCellsAndProbes(self)
            &+ (edition == .edition2025 ? Self.read2025Additions(self) : 0)
    }

    /// What only a 2025 report has: coordinate system, levelled alarms, signature.
    @inlinable
    static func read2025Additions(_ r: GBT32960RealtimeReport) -> Int {
        var sum = Int(r.position?.coordinateSystem ?? 0)
        if let levelled = r.alarms?.levelledAlarms {
            for index in 0..<levelled.count { sum &+= Int(levelled[index].alarm) &+ Int(levelled[index].level) }
        }
        if let signature = r.signature { sum &+= Int(signature.algorithm) &+ signature.r.count &+ signature.s.count }
        return sum
    }

    @inlinable
    static func readVehicleAndMotors(_ r: GBT32960RealtimeReport) -> Int {
        var sum = 0
        if let v = r.vehicle {
            sum &+= Int(v.speedDkmh ?? 0) &+ Int(v.odometerHm ?? 0) &+ Int(v.totalVoltageDv ?? 0)
            sum &+= Int(v.totalCurrentDa ?? 0) &+ Int(v.soc ?? 0) &+ Int(v.insulationKohm ?? 0) &+ Int(v.gear)
            sum &+= Int(v.vehicleState ?? 0) &+ Int(v.chargingState ?? 0) &+ Int(v.dcdcState ?? 0)
        }
        if let motors = r.driveMotors {
            for index in 0..<motors.count {
                let m = motors[index]
                sum &+= Int(m.speedRpm ?? 0) &+ Int(m.torqueDnm ?? 0) &+ Int(m.temperature ?? 0)
                sum &+= Int(m.controllerTemperature ?? 0) &+ Int(m.inputVoltageDv ?? 0) &+ Int(m.dcBusCurrentDa ?? 0)
            }
        }
        return sum
    }

    @inlinable
    static func readFuelCellEngineAndPosition(_ r: GBT32960RealtimeReport) -> Int {
        var sum = 0
        if let f = r.fuelCell {
            sum &+= Int(f.voltageDv ?? 0) &+ Int(f.hydrogenMaxPressure ?? 0) &+ Int(f.dcdcState ?? 0)
            for index in 0..<f.probeCount { sum &+= Int(f.probeTemperature(index) ?? 0) }
        }
        if let e = r.engine { sum &+= Int(e.crankshaftRpm ?? 0) &+ Int(e.fuelRate ?? 0) }
        if let p = r.position { sum &+= Int(p.latitudeE7 ?? 0) &+ Int(p.longitudeE7 ?? 0) }
        return sum
    }

    @inlinable
    static func readExtremesAndAlarms(_ r: GBT32960RealtimeReport) -> Int {
        var sum = 0
        if let x = r.extremes {
            sum &+= Int(x.maxCellVoltageMv ?? 0) &+ Int(x.minCellVoltageMv ?? 0) &+ Int(x.maxTemperature ?? 0)
            sum &+= Int(x.minTemperature ?? 0) &+ Int(x.maxVoltageCell ?? 0) &+ Int(x.minTemperatureProbe ?? 0)
        }
        if let a = r.alarms {
            sum &+= Int(a.maxLevel ?? 0) &+ Int(a.generalFlags)
            for code in a.faults(.energyStorage) { sum &+= Int(code) }
            for code in a.faults(.driveMotor) { sum &+= Int(code) }
            for code in a.faults(.engine) { sum &+= Int(code) }
            for code in a.faults(.other) { sum &+= Int(code) }
        }
        return sum
    }

    @inlinable
    static func readCellsAndProbes(_ r: GBT32960RealtimeReport) -> Int {
        var sum = 0
        if let cells = r.cellVoltages {
            for s in cells {
                sum &+= Int(s.voltageDv ?? 0) &+ Int(s.currentDa ?? 0) &+ s.totalCells &+ s.firstCell
                for index in 0..<s.frameCellCount { sum &+= Int(s.cellVoltageMv(index) ?? 0) }
            }
        }
        if let probes = r.probeTemperatures {
            for s in probes {
                for index in 0..<s.probeCount { sum &+= Int(s.temperature(index) ?? 0) }
            }
        }
        return sum
    }
}
