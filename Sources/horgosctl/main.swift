// The entry point: parse, run, exit with the documented status (see Horgosctl.main).
await Horgosctl.main()
