import Foundation
import HorgosWire

/// The GB/T 32960 listener's configuration keys (`listen.gbt32960`, `gbt32960.*`); every key has a default.
///
/// | key | default | allowed |
/// |---|---|---|
/// | `listen.gbt32960` | `127.0.0.1:7325` | `host:port`; `off` disables the listener |
/// | `gbt32960.tls` | `on` | `on` (mutual TLS, the fleet PKI) or `off` (plain TCP; needs `allowed_vins`) |
/// | `gbt32960.allowed_vins` | empty | comma-separated VINs; required with `tls: off`, ignored with TLS |
/// | `gbt32960.market` | `CN` | with `tls: off`: the region plain-TCP units are stored in |
/// | `gbt32960.time_base` | `beijing` | `beijing` (GMT+8, the standard), `utc`, or an offset `+05:00` |
/// | `gbt32960.max_errors` | `3` | 1...100: error answers in a row before the connection is closed |
/// | `gbt32960.max_in_flight` | `64` | 1...1024: realtime frames awaiting their answer before reading stops |
public struct GBT32960Settings: Sendable, Hashable {
    /// `listen.gbt32960`: where the listener binds; nil when `off`.
    public var listen: ListenAddress?
    /// `gbt32960.tls`: mutual TLS (true) or plain TCP for the allow-listed VINs (false).
    public var tls: Bool
    /// `gbt32960.allowed_vins`: the only VINs a plain-TCP connection may send (units on a private APN).
    public var allowedVINs: Set<VIN>
    /// `gbt32960.market`: the region of plain-TCP units (with TLS, the certificate names it).
    public var market: String
    /// `gbt32960.time_base`: seconds east of UTC of the units' data-unit times (28,800: Beijing).
    public var utcOffsetSeconds: Int
    /// `gbt32960.max_errors`: error answers in a row after which the connection is closed.
    public var maxErrors: Int
    /// `gbt32960.max_in_flight`: realtime/reissue frames queued for storage per connection.
    public var maxInFlight: Int

    public init(
        listen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 7325), tls: Bool = true,
        allowedVINs: Set<VIN> = [], market: String = "CN", utcOffsetSeconds: Int = 8 * 3600, maxErrors: Int = 3,
        maxInFlight: Int = 64
    ) {
        self.listen = listen
        self.tls = tls
        self.allowedVINs = allowedVINs
        self.market = market
        self.utcOffsetSeconds = utcOffsetSeconds
        self.maxErrors = maxErrors
        self.maxInFlight = maxInFlight
    }

    /// Parses `beijing`, `utc` or `+HH:MM` / `-HH:MM` into seconds east of UTC.
    public static func utcOffset(parsing text: String) -> Int? {
        switch text.lowercased() {
        case "beijing", "gmt+8", "cst": return 8 * 3600
        case "utc", "gmt", "z": return 0
        default: break
        }
        let utf8 = Array(text.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "+") || utf8[0] == UInt8(ascii: "-"),
            utf8[3] == UInt8(ascii: ":"),
            let hours = Int(String(decoding: utf8[1..<3], as: UTF8.self)),
            let minutes = Int(String(decoding: utf8[4..<6], as: UTF8.self)), hours <= 14, minutes < 60
        else { return nil }
        let seconds = hours * 3600 + minutes * 60
        return utf8[0] == UInt8(ascii: "-") ? -seconds : seconds
    }

    /// Reads and checks the keys.
    init(keys: KeyReader, regions: [String]) throws(HorgosConfigurationError) {
        self.init()
        let defaults = GBT32960Settings()
        let listenText = try keys.string("listen.gbt32960", default: defaults.listen!.description)
        if listenText.lowercased() == "off" {
            listen = nil
        } else {
            listen = try keys.address("listen.gbt32960", default: defaults.listen!)
        }
        let tlsText = try keys.string("gbt32960.tls", default: "on").lowercased()
        switch tlsText {
        case "on", "true", "yes": tls = true
        case "off", "false", "no": tls = false
        default: throw .invalid("gbt32960.tls", tlsText, "use on (mutual TLS) or off (plain TCP with allowed_vins)")
        }
        let vinsText = try keys.string("gbt32960.allowed_vins", default: "")
        for item in vinsText.split(separator: ",") {
            let text = item.trimmingCharacters(in: .whitespaces)
            guard let vin = VIN(text) else {
                throw .invalid("gbt32960.allowed_vins", text, "list 17-character VINs separated by commas")
            }
            allowedVINs.insert(vin)
        }
        if !tls && allowedVINs.isEmpty && listen != nil {
            throw .invalid(
                "gbt32960.tls", "off",
                "plain TCP needs gbt32960.allowed_vins (the VINs of units on a private APN); or keep tls on")
        }
        market = try keys.string("gbt32960.market", default: defaults.market)
        if !tls && !regions.contains(market) {
            throw .invalid("gbt32960.market", market, "use one of the configured regions")
        }
        let base = try keys.string("gbt32960.time_base", default: "beijing")
        guard let offset = Self.utcOffset(parsing: base) else {
            throw .invalid("gbt32960.time_base", base, "use beijing, utc or an offset such as +05:30")
        }
        utcOffsetSeconds = offset
        maxErrors = try keys.int("gbt32960.max_errors", default: defaults.maxErrors, in: 1...100)
        maxInFlight = try keys.int("gbt32960.max_in_flight", default: defaults.maxInFlight, in: 1...1024)
    }
}
