import Testing
@testable import HorgosServer
@Test func placeholderModuleLinks() { #expect(Bool(true)) }
