print("horgos-bench-store: not built yet")
