public enum HorgosWireInfo { public static let protocolVersion: UInt8 = 1 }
