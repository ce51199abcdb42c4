import Testing
@testable import HorgosStore
@Test func placeholderModuleLinks() { #expect(Bool(true)) }
