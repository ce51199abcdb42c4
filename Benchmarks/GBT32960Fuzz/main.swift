// libFuzzer target for the HorgosGBT32960 decoder (issue 12).
//
// Built with `-sanitize=fuzzer,address -DHORGOS_FUZZ` (Scripts/fuzz-gbt32960.sh), this file hands
// control to libFuzzer, which calls `LLVMFuzzerTestOneInput` with each input. A plain `swift build`
// compiles the placeholder branch, so the package builds without the fuzzer runtime.
#if HORGOS_FUZZ
    #if canImport(Glibc)
        import Glibc
    #endif

    /// libFuzzer's entry for one input.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        fuzzOneInput(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    /// libFuzzer's driver (in the fuzzer runtime that `-sanitize=fuzzer` links).
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    // SwiftPM gives an executable target its own `main`, so libFuzzer's is not used: start its driver here.
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = runFuzzerDriver(&argc, &argv) { data, size in
        fuzzOneInput(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
    exit(status)
#else
    print("horgos-fuzz-gbt32960: a libFuzzer target; run Scripts/fuzz-gbt32960.sh (it builds with -sanitize=fuzzer)")
#endif
