// libFuzzer target for the HorgosGBT32960 decoder (issue 12): Scripts/fuzz-gbt32960.sh.
import HorgosFuzzDriver

runFuzzer(product: "horgos-fuzz-gbt32960", script: "Scripts/fuzz-gbt32960.sh", fuzzOneInput)
