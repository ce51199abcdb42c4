// The libFuzzer driver the fuzz targets share (horgos-fuzz-wire, horgos-fuzz-gbt32960, horgos-fuzz-proxy).
//
// Built with `-sanitize=fuzzer,address -DHORGOS_FUZZ` (Scripts/fuzz-*.sh), `runFuzzer` hands control to
// libFuzzer's driver, which calls the target's one-input function with each input. A plain
// `swift build` compiles the placeholder branch, so the package builds without the fuzzer runtime.
#if canImport(Glibc)
    import Glibc
#endif

#if HORGOS_FUZZ
    /// The target's one-input function; set once by `runFuzzer` before the driver starts.
    nonisolated(unsafe) private var oneInput: (UnsafeRawBufferPointer) -> Void = { _ in }

    /// libFuzzer's entry for one input (the runtime's own `main` would call it by this name).
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        oneInput(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    /// libFuzzer's driver (in the fuzzer runtime that `-sanitize=fuzzer` links).
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// Runs libFuzzer with the process's arguments over `body` and exits with its status. SwiftPM gives
    /// an executable target its own `main`, so libFuzzer's is not used: its driver is started here.
    public func runFuzzer(product: String, script: String, _ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
        oneInput = body
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = runFuzzerDriver(&argc, &argv) { data, size in fuzzerTestOneInput(data, size) }
        exit(status)
    }
#else
    /// Without the fuzzer runtime: says how to build and run the target, and exits 0.
    public func runFuzzer(product: String, script: String, _ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
        print("\(product): a libFuzzer target; run \(script) (it builds with -sanitize=fuzzer)")
        exit(0)
    }
#endif
