import HorgosWire

/// Makes valid, unique VINs of Chinese manufacturers, with the ISO 3779 check digit in position 9.
public enum VINFactory {
    /// World manufacturer identifiers of Chinese carmakers that export widely.
    static let manufacturers = ["LGX", "LSV", "LVV", "LB3", "LFV", "LSJ", "LNB", "LRW", "LJD", "HJR"]
    static let allowed = Array("0123456789ABCDEFGHJKLMNPRSTUVWXYZ".utf8)

    static func transliterate(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        default:
            let table: [Character: Int] = [
                "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8, "J": 1, "K": 2, "L": 3, "M": 4,
                "N": 5, "P": 7, "R": 9, "S": 2, "T": 3, "U": 4, "V": 5, "W": 6, "X": 7, "Y": 8, "Z": 9,
            ]
            return table[Character(Unicode.Scalar(byte))] ?? 0
        }
    }

    /// The ISO 3779 check digit of the 17 characters (position 9 is ignored in the sum).
    public static func checkDigit(_ characters: [UInt8]) -> UInt8 {
        let weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
        let sum = zip(characters, weights).reduce(0) { $0 + transliterate($1.0) * $1.1 }
        let remainder = sum % 11
        return remainder == 10 ? UInt8(ascii: "X") : UInt8(ascii: "0") + UInt8(remainder)
    }

    /// The `index`-th VIN of a fleet made from `seed`; different indexes give different VINs.
    public static func vin(index: Int, seed: UInt64) -> VIN {
        var random = SimRandom(seed: seed ^ UInt64(truncatingIfNeeded: index) &* 0x2545_F491_4F6C_DD1D)
        var characters = Array(manufacturers[index % manufacturers.count].utf8)
        for _ in 0..<5 { characters.append(allowed[Int(random.next() % UInt64(allowed.count))]) }
        characters.append(UInt8(ascii: "0"))  // check digit placeholder (position 9)
        characters.append(UInt8(ascii: "R"))  // model year 2024
        characters.append(allowed[10 + Int(random.next() % UInt64(allowed.count - 10))])  // plant letter
        // The serial carries the index itself, so VINs of one fleet never collide.
        let serial = String(index % 1_000_000)
        let padded = Array((String(repeating: "0", count: 6 - serial.count) + serial).utf8)
        characters.append(contentsOf: padded)
        characters[8] = checkDigit(characters)
        return characters.withUnsafeBytes { VIN(bytes: $0)! }
    }
}
