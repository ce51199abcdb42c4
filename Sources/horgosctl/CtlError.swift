/// The exit status of `horgosctl`, one per family of failure an operator or a script must tell apart.
///
/// The values are a contract with scripts (documented in `horgosctl --help`); never renumber them.
enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Done.
    case ok = 0
    /// Anything not covered below (a file could not be written, an unexpected failure).
    case failure = 1
    /// Bad arguments or configuration: nothing was opened.
    case badArguments = 2
    /// The daemon's admin endpoint did not answer.
    case daemonUnreachable = 3
    /// What was asked for does not exist: unknown VIN, no data, no CA.
    case notFound = 4
    /// A shard failed its integrity check or could not be read.
    case dataProblem = 5
}

/// A failure of a `horgosctl` command: what was wrong, what to do, and the exit status it maps to.
///
/// Every message names the thing that was wrong and ends with the next step for the operator, so
/// the CLI never prints a bare "error".
struct CtlError: Error, Sendable, CustomStringConvertible {
    /// The exit status.
    var status: ExitStatus
    /// What was wrong.
    var problem: String
    /// What to do about it.
    var remedy: String

    /// An error from its parts.
    init(_ status: ExitStatus, _ problem: String, remedy: String) {
        self.status = status
        self.problem = problem
        self.remedy = remedy
    }

    /// `problem; remedy`.
    var description: String { remedy.isEmpty ? problem : "\(problem)\n  -> \(remedy)" }
}
