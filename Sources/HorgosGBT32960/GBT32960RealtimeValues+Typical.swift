extension GBT32960RealtimeValues {
    /// A typical realtime report of an electric car: every 2016 type 0x01–0x09, 64 cells, 16 probes
    /// (about 300 bytes on the wire), with values that vary by `seed` (tests, benchmark, simulator).
    public static func typical(seed: Int, time: GBT32960Time) -> GBT32960RealtimeValues {
        var values = GBT32960RealtimeValues(time: time)
        var vehicle = GBT32960RealtimeValues.Vehicle()
        vehicle.speed = UInt16(400 + seed % 800)
        vehicle.odometer = UInt32(123_456 + seed)
        vehicle.voltage = 3_800
        vehicle.current = UInt16(10_000 - 500 + seed % 1_000)
        vehicle.soc = UInt8(20 + seed % 80)
        vehicle.gear = 0x2E
        vehicle.insulation = 5_000
        values.vehicle = vehicle
        var motor = GBT32960RealtimeValues.Motor()
        motor.speed = UInt16(20_000 + seed % 5_000)
        motor.voltage = 3_790
        values.motors = [motor]
        var fuel = GBT32960RealtimeValues.FuelCell()
        fuel.probes = [60, 61, 62, 63]
        values.fuelCell = fuel
        values.engine = GBT32960RealtimeValues.Engine()
        var position = GBT32960RealtimeValues.Position()
        position.longitude = UInt32(116_397_128 + seed % 1_000)
        position.latitude = 39_916_527
        values.position = position
        var extremes = GBT32960RealtimeValues.Extremes()
        extremes.maxVoltage = 3_998
        extremes.minVoltage = 3_950
        extremes.maxTemperature = 70
        extremes.minTemperature = 60
        values.extremes = extremes
        var alarms = GBT32960RealtimeValues.Alarms()
        alarms.faults = [[0x1001], [], [], []]
        values.alarms = alarms
        var cells = GBT32960RealtimeValues.CellSubsystem()
        cells.voltage = 3_800
        cells.totalCells = 64
        cells.cells = (0..<64).map { UInt16(3_950 + ($0 &* 7 &+ seed) % 48) }
        values.cellSubsystems = [cells]
        var probes = GBT32960RealtimeValues.ProbeSubsystem()
        probes.temperatures = (0..<16).map { UInt8(60 + ($0 + seed) % 10) }
        values.probeSubsystems = [probes]
        return values
    }

    /// The 2025 counterpart of `typical`: types 0x01, 0x02, 0x04–0x08 in that edition's layout (64
    /// cells, 16 probes, a levelled alarm) and an RSA-2048-sized signature (256 bytes of r, not a
    /// real signature: Horgos does not verify them), about 450 bytes on the wire.
    public static func typical2025(seed: Int, time: GBT32960Time) -> GBT32960RealtimeValues {
        var values = typical(seed: seed, time: time)
        values.edition = .edition2025
        values.fuelCell = nil
        values.extremes = nil
        values.vehicle?.current = UInt16(30_000 - 500 + seed % 1_000)
        values.motors?[0].torque = UInt32(200_000 + seed % 1_000)
        values.motors?[0].speed = UInt16(32_000 + seed % 5_000)
        values.motors?[0].voltage = 0  // the 2025 motor has no voltage or current
        values.cellSubsystems?[0].totalCells = 0  // nor a 2025 cell list its split fields
        values.engine?.crankshaft = 0
        values.position?.coordinateSystem = 1
        values.alarms?.levelled = [[0, 1]]
        values.cellSubsystems?[0].current = 30_000
        values.signature = Signature(algorithm: 2, r: (0..<256).map { UInt8(truncatingIfNeeded: $0 &+ seed) }, s: [])
        return values
    }
}
