import ArgumentParser
import Foundation
import HorgosConfig
import HorgosStore
import HorgosWire

/// The options every subcommand takes: where the configuration, the shards and the daemon are, and
/// whether to print JSON.
///
/// Without `--state` / `--admin` the values come from the same configuration the daemon reads:
/// `--config PATH`, else `/etc/horgos/horgosd.yaml` when it exists, with `HORGOS_*` variables on top.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The daemon's configuration file (default /etc/horgos/horgosd.yaml when present; HORGOS_* "
                + "environment variables override it).", valueName: "path"))
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "State directory holding the shards (default: state_directory of the configuration).",
            valueName: "dir"))
    var state: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Admin endpoint of horgosd (default: listen.admin of the configuration, "
                + "http://127.0.0.1:9477).", valueName: "url"))
    var admin: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Admin endpoint of one node of the fleet; repeat for every node (status and fleet merge their "
                + "answers; default: nodes: of the configuration, else --admin).", valueName: "url"))
    var node: [String] = []

    @Flag(name: .long, help: "Print machine-readable JSON on stdout instead of tables.")
    var json = false

    /// Loads the configuration and applies the overrides; refuses a bad file or value (exit 2).
    func context() async throws(CtlError) -> CtlContext {
        let configuration: HorgosConfiguration
        do {
            configuration = try await HorgosConfiguration.load(filePath: config)
        } catch {
            throw CtlError(
                .badArguments, "configuration: \(error)",
                remedy: "fix the file or variable it names, or point --config at the daemon's file")
        }
        let admin = try AdminAddress.resolve(explicit: self.admin, configured: configuration.listen.admin)
        var nodes: [AdminAddress] = []
        for text in node.isEmpty ? configuration.nodes : node {
            nodes.append(
                try AdminAddress.resolve(explicit: text, configured: configuration.listen.admin, option: "--node"))
        }
        return CtlContext(
            configuration: configuration, stateDirectory: state ?? configuration.stateDirectory, admin: admin,
            json: json, nodes: nodes)
    }
}

/// Everything a subcommand needs once the arguments and the configuration are read.
struct CtlContext: Sendable {
    /// The daemon's configuration (defaults where no file or variable set a key).
    let configuration: HorgosConfiguration
    /// The state directory: `--state`, else `state_directory`.
    let stateDirectory: String
    /// The admin endpoint: `--admin`, else `listen.admin`.
    let admin: AdminAddress
    /// `--json`.
    let json: Bool
    /// The fleet's nodes (`--node`, else `nodes:`); empty: this node only (the shards or `--admin`).
    var nodes: [AdminAddress] = []

    /// The configured regions, in configuration order.
    var regions: [HorgosStore.Region] { configuration.regions.compactMap(HorgosStore.Region.init) }

    /// The configured region of `code` (upper-cased), or exit 2 naming the configured ones.
    func region(_ code: String) throws(CtlError) -> HorgosStore.Region {
        let upper = code.uppercased()
        guard let region = HorgosStore.Region(upper), configuration.regions.contains(upper) else {
            let shape = HorgosStore.Region(upper) == nil ? "is not a two-letter ISO 3166-1 code" : "is not configured"
            throw CtlError(
                .badArguments, "region \"\(code)\" \(shape)",
                remedy: "use one of the configured regions (\(configuration.regions.joined(separator: " "))), "
                    + "or point --config at the daemon's configuration")
        }
        return region
    }

    /// The regions a command covers: the one of `--region`, else every configured region.
    func regions(_ code: String?) throws(CtlError) -> [HorgosStore.Region] {
        if let code { return [try region(code)] }
        return regions
    }

    /// A checked VIN, or exit 2.
    static func vin(_ text: String) throws(CtlError) -> VIN {
        guard let vin = VIN(text.uppercased()) else {
            throw CtlError(
                .badArguments,
                "VIN \"\(text)\" is not 17 characters of A-H, J-N, P, R-Z and 0-9 (\(text.count) given; I, O, Q are "
                    + "never used)",
                remedy: "check the VIN on the vehicle's registration or its certificate")
        }
        return vin
    }

    /// A reader of `region`'s shards.
    func reader(_ region: HorgosStore.Region) -> ShardReader {
        ShardReader(stateDirectory: stateDirectory, region: region)
    }

    /// Fails with exit 4 when the state directory does not exist (a wrong --state is the usual cause).
    func requireStateDirectory() throws(CtlError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: stateDirectory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw CtlError(
                .notFound, "state directory \(stateDirectory) does not exist",
                remedy: "pass --state with the daemon's state_directory, or --config with its configuration")
        }
    }
}

/// The admin endpoint's address, from `--admin` / `--node` (`http://host:port`, `host:port` or
/// `unix:/path/to/admin.sock`) or `listen.admin` (a wildcard bind address is reached over loopback).
struct AdminAddress: Sendable, Hashable, CustomStringConvertible {
    /// How to reach it: TCP or a Unix domain socket.
    enum Transport: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    var transport: Transport

    init(host: String, port: Int) { transport = .tcp(host: host, port: port) }

    init(unixPath: String) { transport = .unix(path: unixPath) }

    var description: String {
        switch transport {
        case .tcp(let host, let port): host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    /// The `Host` header's value.
    var hostHeader: String {
        switch transport {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix: "localhost"
        }
    }

    static func resolve(explicit: String?, configured: ListenAddress, option: String = "--admin") throws(CtlError)
        -> AdminAddress
    {
        guard let explicit else {
            let host: String
            switch configured.host {
            case "0.0.0.0", "": host = "127.0.0.1"
            case "::": host = "::1"
            default: host = configured.host
            }
            return AdminAddress(host: host, port: configured.port)
        }
        var text = Substring(explicit)
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/") else {
                throw CtlError(
                    .badArguments, "\(option) \(explicit): a Unix socket needs an absolute path",
                    remedy: "use unix:/run/horgos/admin.sock")
            }
            return AdminAddress(unixPath: path)
        }
        if text.hasPrefix("https://") {
            throw CtlError(
                .badArguments, "\(option) \(explicit): the admin endpoint speaks plain HTTP",
                remedy: "use http://HOST:PORT (it should listen on loopback or a management network)")
        }
        if text.hasPrefix("http://") { text = text.dropFirst("http://".count) }
        while text.hasSuffix("/") { text = text.dropLast() }
        if !text.contains(":") || (text.hasPrefix("[") && !text.contains("]:")) { text += ":80" }
        guard let address = ListenAddress(parsing: String(text)), address.port > 0 else {
            throw CtlError(
                .badArguments, "\(option) \"\(explicit)\" is not an address",
                remedy: "use http://HOST:PORT, for example http://127.0.0.1:9477, or unix:/PATH")
        }
        return AdminAddress(host: address.host, port: address.port)
    }
}
