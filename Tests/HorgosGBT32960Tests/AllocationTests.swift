import HorgosAllocationCounter
import HorgosGBT32960
import HorgosWire
import Testing

/// Decoding a GB/T 32960 frame and reading every block allocates nothing (issue 12, acceptance 2).
@Suite struct GBT32960AllocationTests {
    static func allocations(_ body: () -> Void) -> Int64 {
        horgos_allocation_counter_start()
        body()
        return horgos_allocation_counter_stop()
    }

    /// Decodes every frame of `stream`, reads every field of every block; a checksum of the values.
    static func readAll(_ stream: UnsafeRawBufferPointer) -> (frames: Int, sum: Int) {
        let decoder = GBT32960Decoder()
        var offset = 0, frames = 0, sum = 0
        while offset < stream.count {
            let rest = UnsafeRawBufferPointer(rebasing: stream[offset...])
            guard let frame = try? decoder.decode(rest), case .realtime(let r)? = try? frame.body() else {
                return (-1, -1)
            }
            sum &+= readEveryField(r)
            frames += 1
            offset += frame.header.frameLength
        }
        return (frames, sum)
    }

    @Test func decodingAndReadingEveryBlockAllocatesNothing() {
        var stream: [UInt8] = []
        let time = try! GBT32960Time(year: 26, month: 1, day: 2, hour: 3, minute: 4, second: 5)
        for seed in 0..<200 { stream += realtimeFrame(typicalReport(seed: seed, time: time), vin: DecoderTests.vin) }
        stream.withUnsafeBytes { raw in
            let warm = Self.readAll(raw)
            var result = (frames: 0, sum: 0)
            let count = Self.allocations { result = Self.readAll(raw) }
            #expect(result.frames == 200)
            #expect(result == warm)
            #expect(count == 0, "\(count) allocations for \(result.frames) frames")
        }
    }
}

/// Reads every value of every block through the views (what the store does), summed.
func readEveryField(_ r: GBT32960RealtimeReport) -> Int {
    Int(r.time.second) &+ readVehicleAndMotors(r) &+ readFuelCellEngineAndPosition(r) &+ readExtremesAndAlarms(r)
        &+ readCellsAndProbes(r)
}

func readVehicleAndMotors(_ r: GBT32960RealtimeReport) -> Int {
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

func readFuelCellEngineAndPosition(_ r: GBT32960RealtimeReport) -> Int {
    var sum = 0
    if let f = r.fuelCell {
        sum &+= Int(f.voltageDv ?? 0) &+ Int(f.hydrogenMaxPressure ?? 0) &+ Int(f.dcdcState ?? 0)
        for index in 0..<f.probeCount { sum &+= Int(f.probeTemperature(index) ?? 0) }
    }
    if let e = r.engine { sum &+= Int(e.crankshaftRpm ?? 0) &+ Int(e.fuelRate ?? 0) }
    if let p = r.position { sum &+= Int(p.latitudeE7 ?? 0) &+ Int(p.longitudeE7 ?? 0) }
    return sum
}

func readExtremesAndAlarms(_ r: GBT32960RealtimeReport) -> Int {
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

func readCellsAndProbes(_ r: GBT32960RealtimeReport) -> Int {
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

