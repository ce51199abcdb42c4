import HorgosWire
import HorgosStore
/// Placeholder until the daemon issue fills it.
public enum HorgosServerInfo { public static let version = "0.1.0" }
