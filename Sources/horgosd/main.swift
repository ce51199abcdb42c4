import HorgosServer
print("horgosd \(HorgosServerInfo.version): not built yet")
