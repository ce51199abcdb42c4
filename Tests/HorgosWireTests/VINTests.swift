import HorgosWire
import Testing

@Suite struct VINTests {
    /// The 8-bytes-at-a-time check must accept exactly the ISO 3779 characters, at every position.
    @Test func everyByteValueAtEveryPositionIsJudgedLikeIsVINCharacter() {
        let valid = Array("LSVAU2180N2183294".utf8)
        var accepted = 0
        for position in 0..<VIN.length {
            for byte in 0...255 {
                var bytes = valid
                bytes[position] = UInt8(byte)
                let parsed = bytes.withUnsafeBytes { VIN(bytes: $0) }
                #expect((parsed != nil) == VIN.isVINCharacter(UInt8(byte)), "byte \(byte) at \(position)")
                if parsed != nil { accepted += 1 }
            }
        }
        #expect(accepted == 17 * 33)  // 10 digits + 23 letters (26 without I, O, Q)
    }

    @Test func textRoundTripsAndBadTextIsRefused() {
        #expect(VIN("LSVAU2180N2183294")?.description == "LSVAU2180N2183294")
        #expect(VIN("LSVAU2180N218329") == nil)
        #expect(VIN("LSVAU2180N21832945") == nil)
        #expect(VIN("lsvau2180n2183294") == nil)
    }
}
