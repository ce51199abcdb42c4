// Hardware CRC-32C for HorgosWire.
//
// Why C: Swift has no portable way to emit the SSE4.2 `crc32` instruction or to compile one function
// for a CPU feature the rest of the module may not assume. This target holds only that: CPUID
// detection and the instruction loops. The portable path (slicing-by-8) stays in Swift, and
// HorgosWire picks one at run time from `horgos_crc32c_hardware_available()`.
#ifndef HORGOS_CRC32C_H
#define HORGOS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU executes the SSE4.2 `crc32` instruction (x86-64 only), else 0.
int horgos_crc32c_hardware_available(void);

/// Continues a running (not inverted) CRC-32C over `length` bytes with the `crc32` instruction:
/// three interleaved streams for long inputs, one stream for the rest.
/// Precondition: `horgos_crc32c_hardware_available()` returned 1.
uint32_t horgos_crc32c_hardware_update(uint32_t crc, const void *bytes, size_t length);

/// The same function with a single dependent stream of `crc32` instructions (for the benchmark).
uint32_t horgos_crc32c_hardware_update_single(uint32_t crc, const void *bytes, size_t length);

#ifdef __cplusplus
}
#endif

#endif
