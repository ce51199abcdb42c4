import Foundation
import HorgosAdminAPI
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
        var documents: [(node: AdminAddress, status: DaemonStatus?, error: CtlError?)] = []
        for answer in answers {
            switch answer.result {
            case .success(let body):
                do throws(CtlError) {
                    documents.append((answer.node, try StatusCommand.decode(body, from: answer.node.description), nil))
                } catch {
                    documents.append((answer.node, nil, error))
                }
            case .failure(let error):
                documents.append((answer.node, nil, error))
            }
        }
        if context.json {
            struct Node: Encodable {
                var node: String
                var reachable: Bool
                var status: DaemonStatus?
                var error: String?
            }
            struct Document: Encodable { var nodes: [Node] }
            let nodes = documents.map {
                Node(node: $0.node.description, reachable: $0.status != nil, status: $0.status, error: $0.error?.problem)
            }
            do {
                let encoder = DaemonStatus.encoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                Console.line(String(decoding: try encoder.encode(Document(nodes: nodes)), as: UTF8.self))
            } catch {
                throw CtlError(.failure, "cannot encode the JSON output: \(error)", remedy: "report this as a bug")
            }
            try failIfUnreachable(answers)
            return
        }
        var nodesTable = TextTable([
            .init("NODE"), .init("SERVING"), .init("VERSION"), .init("CONNECTIONS", numeric: true),
            .init("RECORDS/S", numeric: true), .init("DEGRADED"),
        ])
        var rows: [(region: String, node: String, status: RegionStatus?, error: String?)] = []
        for (node, status, error) in documents {
            guard let status else {
                nodesTable.append([node.description, "unreachable", "-", "-", "-", reason(error!)])
                rows.append(("-", node.description, nil, reason(error!)))
                continue
            }
            nodesTable.append([
                node.description, status.serving ? "true" : "false", status.version, "\(status.connections)",
                String(format: "%.1f", status.recordsPerSecond),
                status.degradedRegions.isEmpty ? "-" : status.degradedRegions.joined(separator: " "),
            ])
            for region in status.regions { rows.append((region.region, node.description, region, nil)) }
        }
        rows.sort { ($0.region, $0.node) < ($1.region, $1.node) }
        var regions = TextTable([.init("REGION"), .init("NODE")] + StatusCommand.regionColumns)
        for row in rows {
            guard let region = row.status else {
                regions.append([row.region, row.node, "unreachable", "-", "-", "-", "-", "-", "-", row.error ?? ""])
                continue
            }
            regions.append([row.region, row.node] + StatusCommand.regionCells(region))
        }
        nodesTable.style = StatusCommand.alarmStyle
        regions.style = StatusCommand.alarmStyle
        Console.out(Console.bold("fleet of \(documents.count) nodes") + "\n" + nodesTable.render() + "\n"
            + regions.render())
        try failIfUnreachable(answers)
    }

    // MARK: fleet

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
                guard let document = try? JSONDecoder().decode(NodeFleetHealth.self, from: Data(body)) else {
                    rows.append(Row(node: answer.node.description, reachable: false,
                                    error: "answered /fleet with something that is not a fleet document"))
                    continue
                }
                for health in document.regions where region == nil || health.region == region!.uppercased() {
                    rows.append(Row(node: answer.node.description, reachable: true, health: health))
                }
                for (code, why) in document.unreadable.sorted(by: { $0.key < $1.key }) {
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
