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
            "Admin endpoint of horgosd: unix:/PATH or http://HOST:PORT (default: listen.admin of the "
                + "configuration; the shipped one is unix:/run/horgos/admin.sock).", valueName: "url"))
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
        var configuration: HorgosConfiguration
        do {
            configuration = try await HorgosConfiguration.load(filePath: config)
        } catch {
            throw CtlError(
                .badArguments, "configuration: \(error)",
                remedy: "fix the file or variable it names, or point --config at the daemon's file")
        }
        // --state moves everything under the state directory with it: the development PKI in <state>/pki
        // (pki issue, pki revoke) as well as the shards.
        if let state { configuration.stateDirectory = state }
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
    var regions: [Region] { configuration.regions.compactMap(Region.init) }

    /// The configured region of `code` (upper-cased), or exit 2 naming the configured ones.
    func region(_ code: String) throws(CtlError) -> Region {
        let upper = code.uppercased()
        guard let region = Region(upper), configuration.regions.contains(upper) else {
            let shape = Region(upper) == nil ? "is not a two-letter ISO 3166-1 code" : "is not configured"
            throw CtlError(
                .badArguments, "region \"\(code)\" \(shape)",
                remedy: "use one of the configured regions (\(configuration.regions.joined(separator: " "))), "
                    + "or point --config at the daemon's configuration")
        }
        return region
    }

    /// The regions a command covers: the one of `--region`, else every configured region.
    func regions(_ code: String?) throws(CtlError) -> [Region] {
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
    func reader(_ region: Region) -> ShardReader {
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

/// The admin endpoint: a Unix socket (`unix:/run/horgos/admin.sock`, the shipped default) or host and
/// port, from `--admin` (`unix:/path`, `http://host:port` or `host:port`) or `listen.admin` (a wildcard
/// bind address is reached over loopback).
struct AdminAddress: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int
    /// The Unix domain socket's path, when the endpoint is one.
    var unixSocketPath: String? = nil

    var description: String {
        if let unixSocketPath { return "unix:" + unixSocketPath }
        return host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    /// The `Host` header's value.
    var hostHeader: String {
        if unixSocketPath != nil { return "localhost" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func resolve(explicit: String?, configured: ListenAddress, option: String = "--admin") throws(CtlError)
        -> AdminAddress
    {
        guard let explicit else {
            if let path = configured.unixSocketPath { return AdminAddress(host: "localhost", port: 0, unixSocketPath: path) }
            let host: String
            switch configured.host {
            case "0.0.0.0", "": host = "127.0.0.1"
            case "::": host = "::1"
            default: host = configured.host
            }
            return AdminAddress(host: host, port: configured.port)
        }
        if explicit.hasPrefix("unix:") {
            guard let address = ListenAddress(parsing: explicit), let path = address.unixSocketPath else {
                throw CtlError(
                    .badArguments, "\(option) \"\(explicit)\" is not a socket path",
                    remedy: "use unix:/ABSOLUTE/PATH, for example unix:/run/horgos/admin.sock")
            }
            return AdminAddress(host: "localhost", port: 0, unixSocketPath: path)
        }
        var text = Substring(explicit)
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
                remedy: "use unix:/PATH or http://HOST:PORT, for example http://127.0.0.1:9477")
        }
        return AdminAddress(host: address.host, port: address.port)
    }
}
