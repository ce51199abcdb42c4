import HorgosGBT32960
import HorgosWire

func typicalReport(seed: Int, time: GBT32960Time) -> GBT32960RealtimeValues {
    GBT32960RealtimeValues.typical(seed: seed, time: time)
}

/// A realtime frame of `values` for `vin`.
func realtimeFrame(_ values: GBT32960RealtimeValues, vin: VIN, command: GBT32960Command = .realtime) -> [UInt8] {
    var out: [UInt8] = []
    GBT32960Encoder.appendFrame(edition: values.edition, command: command, vin: GBT32960VINField(vin), to: &out) {
        values.appendDataUnit(to: &$0)
    }
    return out
}
