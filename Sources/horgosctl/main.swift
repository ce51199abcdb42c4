import HorgosServer
print("horgosctl \(HorgosServerInfo.version): not built yet")
