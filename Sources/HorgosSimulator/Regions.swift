/// A market the simulator places vehicles in: an anchor city inside the country and a fleet weight.
///
/// Positions stay within `radiusDegrees` of the anchor, which is chosen small enough that the track
/// stays inside the country. Weights are rough export volumes of Chinese-made cars per market
/// (documented in the README); they decide how a simulated fleet is spread.
public struct SimulatedRegion: Sendable, Hashable {
    public let code: String
    public let city: String
    public let latitude: Double
    public let longitude: Double
    public let radiusDegrees: Double
    public let weight: Int

    /// The 41 default regions of Horgos, with an anchor city and a weight for each.
    public static let all: [SimulatedRegion] = [
        .init(code: "AE", city: "Dubai", latitude: 25.20, longitude: 55.27, radiusDegrees: 0.25, weight: 8),
        .init(code: "SA", city: "Riyadh", latitude: 24.71, longitude: 46.68, radiusDegrees: 0.30, weight: 7),
        .init(code: "QA", city: "Doha", latitude: 25.29, longitude: 51.53, radiusDegrees: 0.10, weight: 2),
        .init(code: "KW", city: "Kuwait City", latitude: 29.37, longitude: 47.98, radiusDegrees: 0.10, weight: 2),
        .init(code: "OM", city: "Muscat", latitude: 23.59, longitude: 58.41, radiusDegrees: 0.12, weight: 2),
        .init(code: "BH", city: "Manama", latitude: 26.23, longitude: 50.59, radiusDegrees: 0.05, weight: 1),
        .init(code: "EG", city: "Cairo", latitude: 30.04, longitude: 31.24, radiusDegrees: 0.20, weight: 4),
        .init(code: "MA", city: "Casablanca", latitude: 33.57, longitude: -7.59, radiusDegrees: 0.15, weight: 3),
        .init(code: "ZA", city: "Johannesburg", latitude: -26.20, longitude: 28.05, radiusDegrees: 0.25, weight: 3),
        .init(code: "NG", city: "Lagos", latitude: 6.52, longitude: 3.38, radiusDegrees: 0.12, weight: 2),
        .init(code: "KE", city: "Nairobi", latitude: -1.29, longitude: 36.82, radiusDegrees: 0.12, weight: 1),
        .init(code: "TR", city: "Istanbul", latitude: 41.01, longitude: 28.98, radiusDegrees: 0.20, weight: 4),
        .init(code: "IL", city: "Tel Aviv", latitude: 32.09, longitude: 34.78, radiusDegrees: 0.08, weight: 3),
        .init(code: "KZ", city: "Almaty", latitude: 43.24, longitude: 76.89, radiusDegrees: 0.20, weight: 4),
        .init(code: "UZ", city: "Tashkent", latitude: 41.30, longitude: 69.24, radiusDegrees: 0.20, weight: 4),
        .init(code: "AZ", city: "Baku", latitude: 40.41, longitude: 49.87, radiusDegrees: 0.10, weight: 1),
        .init(code: "TH", city: "Bangkok", latitude: 13.76, longitude: 100.50, radiusDegrees: 0.25, weight: 7),
        .init(code: "MY", city: "Kuala Lumpur", latitude: 3.14, longitude: 101.69, radiusDegrees: 0.20, weight: 4),
        .init(code: "SG", city: "Singapore", latitude: 1.35, longitude: 103.82, radiusDegrees: 0.06, weight: 2),
        .init(code: "ID", city: "Jakarta", latitude: -6.21, longitude: 106.85, radiusDegrees: 0.20, weight: 5),
        .init(code: "PH", city: "Manila", latitude: 14.60, longitude: 120.98, radiusDegrees: 0.15, weight: 4),
        .init(code: "VN", city: "Ho Chi Minh City", latitude: 10.82, longitude: 106.63, radiusDegrees: 0.15, weight: 3),
        .init(code: "KH", city: "Phnom Penh", latitude: 11.56, longitude: 104.93, radiusDegrees: 0.10, weight: 1),
        .init(code: "AU", city: "Sydney", latitude: -33.87, longitude: 151.00, radiusDegrees: 0.25, weight: 6),
        .init(code: "NZ", city: "Auckland", latitude: -36.85, longitude: 174.76, radiusDegrees: 0.12, weight: 2),
        .init(code: "MX", city: "Mexico City", latitude: 19.43, longitude: -99.13, radiusDegrees: 0.25, weight: 8),
        .init(code: "BR", city: "Sao Paulo", latitude: -23.55, longitude: -46.63, radiusDegrees: 0.30, weight: 8),
        .init(code: "CL", city: "Santiago", latitude: -33.45, longitude: -70.67, radiusDegrees: 0.15, weight: 4),
        .init(code: "CO", city: "Bogota", latitude: 4.71, longitude: -74.07, radiusDegrees: 0.15, weight: 2),
        .init(code: "PE", city: "Lima", latitude: -12.05, longitude: -77.04, radiusDegrees: 0.15, weight: 2),
        .init(code: "AR", city: "Buenos Aires", latitude: -34.60, longitude: -58.45, radiusDegrees: 0.20, weight: 2),
        .init(code: "EC", city: "Quito", latitude: -0.18, longitude: -78.47, radiusDegrees: 0.10, weight: 1),
        .init(code: "UY", city: "Montevideo", latitude: -34.88, longitude: -56.17, radiusDegrees: 0.08, weight: 1),
        .init(code: "HU", city: "Budapest", latitude: 47.50, longitude: 19.04, radiusDegrees: 0.15, weight: 2),
        .init(code: "PL", city: "Warsaw", latitude: 52.23, longitude: 21.01, radiusDegrees: 0.20, weight: 2),
        .init(code: "DE", city: "Berlin", latitude: 52.52, longitude: 13.40, radiusDegrees: 0.20, weight: 3),
        .init(code: "ES", city: "Madrid", latitude: 40.42, longitude: -3.70, radiusDegrees: 0.20, weight: 3),
        .init(code: "IT", city: "Milan", latitude: 45.46, longitude: 9.19, radiusDegrees: 0.15, weight: 2),
        .init(code: "GB", city: "London", latitude: 51.51, longitude: -0.13, radiusDegrees: 0.20, weight: 4),
        .init(code: "FR", city: "Paris", latitude: 48.86, longitude: 2.35, radiusDegrees: 0.15, weight: 2),
        .init(code: "NO", city: "Oslo", latitude: 59.91, longitude: 10.75, radiusDegrees: 0.10, weight: 2),
    ]

    /// Looks a region up by its ISO code.
    public static func named(_ code: String) -> SimulatedRegion? { all.first { $0.code == code } }

    /// Spreads `count` vehicles over `regions` in proportion to their weights (largest remainder),
    /// so every region with weight gets its fair share and the total is exact.
    public static func apportion(_ count: Int, over regions: [SimulatedRegion] = all) -> [(SimulatedRegion, Int)] {
        let total = regions.reduce(0) { $0 + $1.weight }
        guard total > 0, count > 0 else { return regions.map { ($0, 0) } }
        var shares = regions.map { ($0, count * $0.weight / total, (count * $0.weight) % total) }
        var remaining = count - shares.reduce(0) { $0 + $1.1 }
        for index in shares.indices.sorted(by: { shares[$0].2 > shares[$1].2 }) where remaining > 0 {
            shares[index].1 += 1
            remaining -= 1
        }
        return shares.map { ($0.0, $0.1) }
    }
}
