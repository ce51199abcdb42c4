import Foundation
import HorgosStore

/// The fleet-wide view: `status` and `fleet` asked of every node (`--node URL` repeated, or `nodes:`
/// in the configuration) at once, merged into one table with a node column.
///
/// Nodes are asked concurrently, each with its own timeout. A node that does not answer is shown as
/// a row of its own ("unreachable" and why) while the others are still shown, and makes the exit
/// status 3 (daemon unreachable) once everything is printed.
enum FleetWide {
    /// One node's answer to one GET: the body, or why there is none.
    struct Answer: Sendable {
        var node: AdminAddress
        var result: Result<[UInt8], CtlError>
    }

    /// GET `path` of every node concurrently; answers in the nodes' order.
    static func fetch(_ nodes: [AdminAddress], path: String, timeoutSeconds: Int) async -> [Answer] {
        await withTaskGroup(of: (Int, Answer).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask {
                    do throws(CtlError) {
                        let response = try await AdminClient.get(node, path: path, timeoutSeconds: timeoutSeconds)
                        guard (200..<300).contains(response.status) else {
                            throw CtlError(
                                .daemonUnreachable,
                                "\(node) answered HTTP \(response.status) to GET \(path): "
                                    + String(decoding: response.body.prefix(120), as: UTF8.self),
                                remedy: "check that node's journal (journalctl -u horgosd)")
                        }
                        return (index, Answer(node: node, result: .success(response.body)))
                    } catch {
                        return (index, Answer(node: node, result: .failure(error)))
                    }
                }
            }
            var answers: [(Int, Answer)] = []
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Exit 3 naming the nodes that did not answer, after the table was printed.
    static func failIfUnreachable(_ answers: [Answer]) throws(CtlError) {
        let dead = answers.filter { if case .failure = $0.result { true } else { false } }
        guard !dead.isEmpty else { return }
        throw CtlError(
            .daemonUnreachable,
            "\(dead.count) of \(answers.count) nodes did not answer: "
                + dead.map(\.node.description).joined(separator: ", "),
            remedy: "check that horgosd runs on those nodes and that --node (or nodes: in the configuration) "
                + "names their admin endpoints; the other nodes are shown above")
    }

    /// A short reason for an unreachable node's row.
    static func reason(_ error: CtlError) -> String {
        let text = error.problem
        return text.count > 90 ? String(text.prefix(87)) + "..." : text
    }

    // MARK: status

    /// `horgosctl status --node A --node B`: one row per region with its node, plus a row per dead node.
    static func status(_ context: CtlContext, timeoutSeconds: Int) async throws(CtlError) {
        let answers = await fetch(context.nodes, path: "/status", timeoutSeconds: timeoutSeconds)
        var documents: [(AdminAddress, [String: Any]?, CtlError?)] = []
        for answer in answers {
            switch answer.result {
            case .success(let body):
                let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
                documents.append(
                    (
                        answer.node, object,
                        object == nil
                            ? CtlError(.failure, "\(answer.node) answered /status with something that is not JSON",
                                       remedy: "") : nil
                    ))
            case .failure(let error):
                documents.append((answer.node, nil, error))
            }
        }
        if context.json {
            var nodes: [[String: Any]] = []
            for (node, document, error) in documents {
                var entry: [String: Any] = ["node": node.description, "reachable": document != nil]
                if let document { entry["status"] = document }
                if let error { entry["error"] = error.problem }
                nodes.append(entry)
            }
            let data =
                (try? JSONSerialization.data(withJSONObject: ["nodes": nodes], options: [.prettyPrinted, .sortedKeys]))
                ?? Data()
            Console.line(String(decoding: data, as: UTF8.self))
            try failIfUnreachable(answers)
            return
        }
        var nodesTable = TextTable([
            .init("NODE"), .init("SERVING"), .init("VERSION"), .init("CONNECTIONS", numeric: true),
            .init("RECORDS/S", numeric: true), .init("DEGRADED"),
        ])
        var regions = TextTable([
            .init("REGION"), .init("NODE"), .init("STATE"), .init("QUEUED BYTES", numeric: true),
            .init("STORED", numeric: true), .init("DUPLICATES", numeric: true), .init("REJECTED", numeric: true),
            .init("FAULT"),
        ])
        var rows: [[String]] = []
        for (node, document, error) in documents {
            guard let document else {
                nodesTable.append([node.description, "unreachable", "-", "-", "-", reason(error!)])
                rows.append(["-", node.description, "unreachable", "-", "-", "-", "-", reason(error!)])
                continue
            }
            let value = { (key: String) in document[key].map(StatusCommand.scalar) ?? "-" }
            nodesTable.append([
                node.description, value("serving"), value("version"), value("connections"), value("recordsPerSecond"),
                value("degradedRegions"),
            ])
            for region in document["regions"] as? [[String: Any]] ?? [] {
                let field = { (key: String) in region[key].map(StatusCommand.scalar) ?? "-" }
                rows.append([
                    field("region"), node.description, field("state"), field("queuedBytes"), field("recordsStored"),
                    field("recordsDuplicate"), field("recordsRejected"), field("fault"),
                ])
            }
        }
        for row in rows.sorted(by: { ($0[0], $0[1]) < ($1[0], $1[1]) }) { regions.append(row) }
        let alarming = ["unreachable", "degraded", "stopped", "false"]
        nodesTable.style = { _, _, text in
            alarming.contains(text.trimmingCharacters(in: .whitespaces)) ? Console.red(text) : text
        }
        regions.style = nodesTable.style
        Console.out(Console.bold("fleet of \(documents.count) nodes") + "\n" + nodesTable.render() + "\n"
            + regions.render())
        try failIfUnreachable(answers)
    }

    // MARK: fleet

    /// A node's `/fleet` document, as `horgosctl` reads it.
    struct NodeFleet: Decodable {
        var asOfMs: Int64
        var regions: [FleetHealth]
        var unreadable: [String: String]?
    }

    /// One merged row: a node's region, or a node that did not answer.
    struct Row: Encodable {
        var node: String
        var reachable: Bool
        var error: String?
        var health: FleetHealth?
    }

    /// `horgosctl fleet --node A --node B`: fleet health per region across the nodes.
    static func fleet(
        _ context: CtlContext, region: String?, lowSOC: Int, maxCellTemp: Int, timeoutSeconds: Int
    ) async throws(CtlError) {
        let answers = await fetch(
            context.nodes, path: "/fleet?low_soc=\(lowSOC)&max_cell_temp=\(maxCellTemp)",
            timeoutSeconds: timeoutSeconds)
        var rows: [Row] = []
        for answer in answers {
            switch answer.result {
            case .success(let body):
                guard let document = try? JSONDecoder().decode(NodeFleet.self, from: Data(body)) else {
                    rows.append(Row(node: answer.node.description, reachable: false,
                                    error: "answered /fleet with something that is not a fleet document"))
                    continue
                }
                for health in document.regions where region == nil || health.region == region!.uppercased() {
                    rows.append(Row(node: answer.node.description, reachable: true, health: health))
                }
                for (code, why) in (document.unreadable ?? [:]).sorted(by: { $0.key < $1.key }) {
                    rows.append(Row(node: answer.node.description, reachable: true, error: "\(code): \(why)"))
                }
            case .failure(let error):
                rows.append(Row(node: answer.node.description, reachable: false, error: reason(error)))
            }
        }
        rows.sort { ($0.health?.region ?? "~", $0.node) < ($1.health?.region ?? "~", $1.node) }
        if context.json {
            struct Document: Encodable {
                var nodes: [String]
                var rows: [Row]
            }
            try Console.json(Document(nodes: context.nodes.map(\.description), rows: rows))
            try failIfUnreachable(answers)
            return
        }
        var table = TextTable([
            .init("REGION"), .init("NODE"), .init("VEHICLES", numeric: true), .init("REPORTING 1H", numeric: true),
            .init("SILENT >24H", numeric: true), .init("ALARMS", numeric: true),
            .init("SOC <\(lowSOC)%", numeric: true), .init("CELLS >\(maxCellTemp)°C", numeric: true),
            .init("AVG SOC", numeric: true),
        ])
        var totals = [0, 0, 0, 0, 0, 0]
        for row in rows {
            guard let h = row.health else {
                table.append(["-", row.node, row.reachable ? "unreadable" : "unreachable", "", "", "", "", "",
                              row.error ?? ""])
                continue
            }
            let values = [h.vehiclesTotal, h.reportingLastHour, h.silentOver24h, h.withActiveAlarms, h.lowSOC,
                          h.overTemperature]
            for index in totals.indices { totals[index] += values[index] }
            var cells: [String] = [h.region, row.node]
            cells += values.map { String($0) }
            cells.append(h.averageSOC.map { String(format: "%.1f%%", $0) } ?? "-")
            table.append(cells)
        }
        var totalCells: [String] = ["total", "\(context.nodes.count) nodes"]
        totalCells += totals.map { String($0) }
        totalCells.append("")
        table.append(totalCells)
        table.style = { _, _, text in
            ["unreachable", "unreadable"].contains(text.trimmingCharacters(in: .whitespaces)) ? Console.red(text) : text
        }
        Console.out(table.render())
        try failIfUnreachable(answers)
    }
}
