import Testing
@testable import HorgosWire
@Test func placeholderModuleLinks() { #expect(HorgosWireInfo.protocolVersion == 1) }
