import ArgumentParser

/// `horgosctl`: the operator CLI (the other subcommands arrive with the CLI work).
@main
struct Horgosctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "horgosctl", abstract: "Operate Horgos.", subcommands: [DemoCommand.self])
}

