// libFuzzer target for the HorgosWire parser (issue 2, item 6): Scripts/fuzz-wire.sh.
import HorgosFuzzDriver

runFuzzer(product: "horgos-fuzz-wire", script: "Scripts/fuzz-wire.sh", fuzzOneInput)
