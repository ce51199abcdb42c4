print("horgos-bench-wire: not built yet")
