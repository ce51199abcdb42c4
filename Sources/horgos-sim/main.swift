import HorgosWire
print("horgos-sim: not built yet")
