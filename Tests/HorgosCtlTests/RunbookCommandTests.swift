import Foundation
import Testing

/// Every `horgosctl` command in a code block of Deploy/RUNBOOK.md exists as written: each subcommand
/// and each flag is checked against the built binary's `--help`, and every repository file the
/// runbook names exists. Sections other helpers add are checked the same way (nothing is listed here).
@Suite("RUNBOOK commands")
struct RunbookCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// One `horgosctl` invocation: its words after `horgosctl`, and where it was found.
    struct Command: CustomStringConvertible {
        var words: [String]
        var line: Int
        var description: String { "RUNBOOK.md:\(line): horgosctl \(words.joined(separator: " "))" }
    }

    /// The `horgosctl` invocations in the fenced code blocks of `text` (shell prompts `# ` and `$ `,
    /// `sudo -u USER` prefixes, pipes, `&&`, `;` and trailing `# comments` handled).
    static func commands(in text: String) -> [Command] {
        var commands: [Command] = []
        var inBlock = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") {
                inBlock.toggle()
                continue
            }
            guard inBlock else { continue }
            var shell = line
            if shell.hasPrefix("# ") || shell.hasPrefix("$ ") { shell = String(shell.dropFirst(2)) }
            if let comment = shell.range(of: " #") { shell = String(shell[..<comment.lowerBound]) }
            for part in shell.components(separatedBy: CharacterSet(charactersIn: "|;&")) {
                let words = part.split(separator: " ").map(String.init)
                guard let at = words.firstIndex(where: { $0 == "horgosctl" || $0.hasSuffix("/horgosctl") }) else {
                    continue
                }
                let rest = words[(at + 1)...].prefix { !$0.hasPrefix(">") && !$0.hasPrefix("<") && $0 != "2>&1" }
                commands.append(Command(words: Array(rest), line: index + 1))
            }
        }
        return commands
    }

    /// What is wrong with `command` according to `help` (the `--help` text of a subcommand path).
    static func problems(_ command: Command, help: ([String]) async throws -> String) async rethrows -> [String] {
        var path: [String] = []
        var text = try await help(path)
        var problems: [String] = []
        for word in command.words {
            if word.hasPrefix("-") {
                let flag = String(word.split(separator: "=", maxSplits: 1)[0])
                if flag != "--help" && flag != "-h" && !Self.mentions(text, flag) {
                    problems.append("\(command): \(flag) is not an option of horgosctl \(path.joined(separator: " "))")
                }
                continue
            }
            let subcommands = Self.subcommands(of: text)
            guard !subcommands.isEmpty else { continue }  // a value or a positional argument
            guard subcommands.contains(word) else {
                problems.append(
                    "\(command): \(word) is not a subcommand of horgosctl \(path.joined(separator: " "))"
                        + " (it has \(subcommands.sorted().joined(separator: ", ")))")
                return problems
            }
            path.append(word)
            text = try await help(path)
        }
        if !Self.subcommands(of: text).isEmpty {
            problems.append("\(command): horgosctl \(path.joined(separator: " ")) needs a subcommand")
        }
        return problems
    }

    static func mentions(_ help: String, _ flag: String) -> Bool {
        help.components(separatedBy: CharacterSet(charactersIn: " ,\n[]<>=|")).contains(flag)
    }

    /// The names listed under `SUBCOMMANDS:` of an ArgumentParser help text.
    static func subcommands(of help: String) -> Set<String> {
        guard let section = help.components(separatedBy: "SUBCOMMANDS:").dropFirst().first else { return [] }
        var names = Set<String>()
        for line in section.split(separator: "\n", omittingEmptySubsequences: false).dropFirst() {
            if line.isEmpty { break }
            guard line.hasPrefix("  "), !line.hasPrefix("      "),
                let name = line.split(separator: " ").first
            else { continue }
            names.insert(String(name))
        }
        return names
    }

    @Test("every horgosctl subcommand and flag in RUNBOOK.md's code blocks is in horgosctl --help")
    func everyRunbookCommandExists() async throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Deploy/RUNBOOK.md"), encoding: .utf8)
        let commands = Self.commands(in: text)
        #expect(commands.count >= 6, "found \(commands.count) horgosctl commands")
        var cache: [[String]: String] = [:]
        var problems: [String] = []
        for command in commands {
            problems += try await Self.problems(command) { path in
                if let cached = cache[path] { return cached }
                let run = try await runHorgosctl(path + ["--help"])
                #expect(run.status == 0, "horgosctl \(path.joined(separator: " ")) --help: \(run.stderr)")
                cache[path] = run.stdout
                return run.stdout
            }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test("the check fails for a subcommand or flag horgosctl does not have")
    func theCheckCatchesWhatIsMissing() async throws {
        let text = """
            ```console
            # sudo -u horgos horgosctl backup --region DE --to /backup   # planned
            # horgosctl status --bogus | head
            # horgosctl pki issue vehicle --dir /ca --vin X --market DE && echo ok
            ```
            """
        let commands = Self.commands(in: text)
        #expect(commands.map(\.words.count) == [5, 2, 9])
        let help: ([String]) -> String = { path in
            switch path {
            case []: "SUBCOMMANDS:\n  status   Live counters.\n  pki      The fleet PKI.\n\n"
            case ["pki"]: "SUBCOMMANDS:\n  issue    Issue.\n\n"
            case ["pki", "issue"]: "SUBCOMMANDS:\n  vehicle\n  gateway\n\n"
            case ["pki", "issue", "vehicle"]: "OPTIONS:\n  --dir <dir>\n  --vin <vin>\n  --market <market>\n"
            default: "OPTIONS:\n  --json\n"
            }
        }
        var problems: [String] = []
        for command in commands { problems += await Self.problems(command, help: help) }
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.first?.contains("backup is not a subcommand") == true)
        #expect(problems.last?.contains("--bogus") == true)
    }

    @Test("every repository file RUNBOOK.md names exists")
    func everyNamedFileExists() async throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Deploy/RUNBOOK.md"), encoding: .utf8)
        let pattern = try NSRegularExpression(
            pattern:
                "(?<![/A-Za-z0-9_.-])(Deploy|systemd|Proto|Scripts|Benchmarks|Sources)/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
        let matches = pattern.matches(in: text, range: NSRange(text.startIndex..., in: text))
        let paths = Set(matches.compactMap { Range($0.range, in: text).map { String(text[$0]) } })
        #expect(paths.count >= 3, "the extraction finds the files the runbook names")
        for path in paths.sorted() {
            #expect(
                FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(path).path),
                "RUNBOOK.md names \(path), which does not exist")
        }
    }
}
