/// Build facts of the daemon (version shown by `--version`, `/status` and the log).
public enum HorgosServerInfo {
    /// The daemon's version.
    public static let version = "0.1.0"
}
