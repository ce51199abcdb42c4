print("horgos-fuzz-wire: build with -sanitize=fuzzer")
