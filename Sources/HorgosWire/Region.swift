/// A region: an ISO 3166-1 alpha-2 market code such as `AE` or `MX`, the one region type of Horgos
/// (configuration, certificates, the connection pipeline, the store).
///
/// The market in a certificate picks the region; each region has its own directory, writer and files,
/// so regions never share a lock or a failure. Only two upper-case ASCII letters are accepted (not
/// checked against the ISO list, so user-assigned codes such as XA work for test fleets).
public struct Region: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let code: String

    /// Nil unless `code` is exactly two letters A-Z.
    public init?(_ code: String) {
        guard Self.isValidCode(code) else { return nil }
        self.code = code
    }

    /// True for two ASCII upper-case letters (an ISO 3166-1 alpha-2 code's shape).
    public static func isValidCode(_ code: String) -> Bool {
        code.utf8.count == 2 && code.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    public var description: String { code }
    public static func < (lhs: Region, rhs: Region) -> Bool { lhs.code < rhs.code }

    /// The 41 default markets (configuration may replace them).
    public static let defaultCodes = [
        "AE", "SA", "QA", "KW", "OM", "BH", "EG", "MA", "ZA", "NG", "KE", "TR", "IL", "KZ", "UZ", "AZ", "TH", "MY",
        "SG", "ID", "PH", "VN", "KH", "AU", "NZ", "MX", "BR", "CL", "CO", "PE", "AR", "EC", "UY", "HU", "PL", "DE",
        "ES", "IT", "GB", "FR", "NO",
    ]
    public static let defaultSet: [Region] = defaultCodes.compactMap(Region.init)
}
