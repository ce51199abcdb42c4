/// Placeholder until the store issue fills it.
public enum HorgosStoreInfo { public static let schemaVersion = 1 }
