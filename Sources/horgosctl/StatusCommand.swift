import ArgumentParser
import Foundation

/// `horgosctl status`: the live daemon's `/status` document, as tables or passed through as JSON.
///
/// The document's shape belongs to the daemon and may grow, so it is read as generic JSON: top-level
/// scalars (and one level of nested objects, as `a.b`) become a key/value table; a `regions` array of
/// objects, or an object of objects keyed by region, becomes a table with one row per region (a list
/// of region codes stays a field). Lists of strings print as words, other nested values as JSON.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The running daemon's status from its admin endpoint (GET /status).",
        discussion: """
            With --node URL repeated (or nodes: in the configuration) every node is asked and the answers \
            are merged, one row per region with its node; a node that does not answer gets a row of its \
            own and makes the exit status 3, the others are still shown. \
            Exit 3 when the admin endpoint does not answer: check that horgosd runs and that --admin (or \
            listen.admin in the configuration) is its address. --json prints the daemon's document as is.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Seconds to wait for the connection and for each read.")
    var timeout = 5

    func run() async throws {
        let context = try await global.context()
        if !context.nodes.isEmpty {
            try await FleetWide.status(context, timeoutSeconds: max(1, timeout))
            return
        }
        let response = try await AdminClient.get(context.admin, path: "/status", timeoutSeconds: max(1, timeout))
        guard (200..<300).contains(response.status) else {
            throw CtlError(
                .daemonUnreachable,
                "the admin endpoint \(context.admin) answered HTTP \(response.status) to GET /status: "
                    + String(decoding: response.body.prefix(200), as: UTF8.self),
                remedy: "check the daemon's journal (journalctl -u horgosd); it may be starting or stopping")
        }
        if context.json {
            Console.out(String(decoding: response.body, as: UTF8.self))
            if response.body.last != UInt8(ascii: "\n") { Console.line() }
            return
        }
        guard let document = try? JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed])
        else {
            throw CtlError(
                .failure, "the admin endpoint \(context.admin) answered /status with something that is not JSON",
                remedy: "check that --admin names horgosd's admin endpoint and not another service")
        }
        Console.out(Self.render(document, source: context.admin.description))
    }

    /// The tables of a `/status` document.
    static func render(_ document: Any, source: String) -> String {
        guard let object = document as? [String: Any] else { return "\(scalar(document))\n" }
        let regions = object["regions"].flatMap(regionTable)
        var summary = TextTable([.init("FIELD"), .init("VALUE")])
        for key in object.keys.sorted() where !(key == "regions" && regions != nil) {
            let value = object[key]!
            if let nested = value as? [String: Any] {
                for inner in nested.keys.sorted() { summary.append(["\(key).\(inner)", scalar(nested[inner]!)]) }
            } else {
                summary.append([key, scalar(value)])
            }
        }
        var output = Console.bold("horgosd at \(source)") + "\n" + summary.render()
        if let regions { output += "\n" + regions.render() }
        return output
    }

    private static func regionTable(_ value: Any) -> TextTable? {
        var rows: [(String, [String: Any])] = []
        if let list = value as? [[String: Any]] {
            for entry in list {
                let name = (entry["region"] ?? entry["code"] ?? entry["name"]).map(scalar) ?? "?"
                rows.append((name, entry))
            }
        } else if let map = value as? [String: Any] {
            for key in map.keys.sorted() { rows.append((key, map[key] as? [String: Any] ?? ["value": map[key]!])) }
        } else {
            return nil
        }
        guard !rows.isEmpty else { return nil }
        let skip: Set<String> = ["region", "code", "name"]
        var keys: [String] = []
        for (_, fields) in rows {
            for key in fields.keys.sorted() where !skip.contains(key) && !keys.contains(key) { keys.append(key) }
        }
        var table = TextTable(
            [.init("REGION")]
                + keys.map { key in
                    .init(key.uppercased(), numeric: rows.allSatisfy { $0.1[key] == nil || $0.1[key] is NSNumber })
                })
        for (name, fields) in rows {
            table.append([name] + keys.map { key in fields[key].map { key == "policy" ? policy($0) : scalar($0) } ?? "-" })
        }
        table.style = { _, _, text in
            let plain = text.trimmingCharacters(in: .whitespaces)
            return ["degraded", "failed", "stopped"].contains { plain.hasPrefix($0) } ? Console.red(text) : text
        }
        return table
    }

    /// A region's policy (`/status` `regions[].policy`) in a few words: `30d no-stream no-backup pos=3`.
    static func policy(_ value: Any) -> String {
        guard let policy = value as? [String: Any], let days = policy["retentionDays"] as? Int else { return scalar(value) }
        var words = ["\(days)d"]
        if (policy["stream"] as? Bool) == false { words.append("no-stream") }
        if (policy["backup"] as? Bool) == false { words.append("no-backup") }
        if let decimals = policy["positionDecimals"] as? Int, decimals < 7 { words.append("pos=\(decimals)") }
        return words.joined(separator: " ")
    }

    /// One value as table text; nested arrays and objects as compact JSON.
    static func scalar(_ value: Any) -> String {
        switch value {
        case is NSNull: return "-"
        case let text as String: return text
        case let list as [Any] where list.allSatisfy({ $0 is String }):
            return list.map { "\($0)" }.joined(separator: " ")
        case let number as NSNumber:
            // JSON booleans come back as NSNumber of ObjC type "c" (JSON never yields an Int8).
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return number.stringValue
        default:
            guard
                let data = try? JSONSerialization.data(
                    withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            else { return "\(value)" }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
