// CRC-32C with the x86-64 SSE4.2 `crc32` instruction. See include/horgos_crc32c.h for why this is C.
//
// The instruction has a latency of 3 cycles and a throughput of 1 per cycle, so one dependent chain
// uses a third of it. For long inputs three chains run over three adjacent blocks and are combined
// with a table-driven "shift by block length" (multiplication by x^(8n) modulo the polynomial), as in
// Mark Adler's crc32c.c. The combination is exact: the CRC register is linear over GF(2), so
// reg(c, A || B) = shift(reg(c, A), |B|) ^ reg(0, B).
#include "horgos_crc32c.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

#define HORGOS_POLY 0x82F63B78u
// Block lengths of the interleaved loops: 3 x LONG and 3 x SHORT bytes per round.
#define HORGOS_LONG 1024
#define HORGOS_SHORT 128

static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static int hardware_available = 0;

// a(x) * b(x) mod p(x), reflected bit order (zlib's multmodp).
static uint32_t multmodp(uint32_t a, uint32_t b) {
    uint32_t m = (uint32_t)1 << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ HORGOS_POLY : b >> 1;
    }
    return p;
}

// x^(8 * bytes) mod p(x).
static uint32_t x8nmodp(size_t bytes) {
    uint32_t p = (uint32_t)1 << 31;  // x^0
    for (size_t bit = 0; bit < 8 * bytes; bit++) p = (p & 1) ? (p >> 1) ^ HORGOS_POLY : p >> 1;
    return p;
}

static void fill_shift_table(uint32_t table[4][256], size_t bytes) {
    uint32_t factor = x8nmodp(bytes);
    for (int k = 0; k < 4; k++)
        for (uint32_t n = 0; n < 256; n++) table[k][n] = multmodp(factor, n << (8 * k));
}

__attribute__((constructor)) static void horgos_crc32c_init(void) {
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2)) {
        fill_shift_table(shift_long, HORGOS_LONG);
        fill_shift_table(shift_short, HORGOS_SHORT);
        hardware_available = 1;
    }
}

int horgos_crc32c_hardware_available(void) { return hardware_available; }

static inline uint32_t shift(const uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xFF] ^ table[1][(crc >> 8) & 0xFF] ^ table[2][(crc >> 16) & 0xFF]
        ^ table[3][crc >> 24];
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

__attribute__((target("sse4.2"))) static inline uint64_t tail(uint64_t crc, const unsigned char *p,
                                                              size_t length) {
    while (length >= 8) {
        crc = __builtin_ia32_crc32di(crc, load64(p));
        p += 8;
        length -= 8;
    }
    uint32_t crc32 = (uint32_t)crc;
    while (length > 0) {
        crc32 = __builtin_ia32_crc32qi(crc32, *p++);
        length--;
    }
    return crc32;
}

__attribute__((target("sse4.2"))) uint32_t horgos_crc32c_hardware_update_single(uint32_t crc, const void *bytes,
                                                                               size_t length) {
    return (uint32_t)tail(crc, (const unsigned char *)bytes, length);
}

#define HORGOS_INTERLEAVE(BLOCK, TABLE)                                           \
    while (length >= 3 * (BLOCK)) {                                               \
        uint64_t crc1 = 0, crc2 = 0;                                              \
        const unsigned char *end = p + (BLOCK);                                   \
        do {                                                                      \
            crc0 = __builtin_ia32_crc32di(crc0, load64(p));                       \
            crc1 = __builtin_ia32_crc32di(crc1, load64(p + (BLOCK)));             \
            crc2 = __builtin_ia32_crc32di(crc2, load64(p + 2 * (BLOCK)));         \
            p += 8;                                                               \
        } while (p < end);                                                        \
        crc0 = shift(TABLE, (uint32_t)crc0) ^ (uint32_t)crc1;                     \
        crc0 = shift(TABLE, (uint32_t)crc0) ^ (uint32_t)crc2;                     \
        p += 2 * (BLOCK);                                                         \
        length -= 3 * (BLOCK);                                                    \
    }

__attribute__((target("sse4.2"))) uint32_t horgos_crc32c_hardware_update(uint32_t crc, const void *bytes,
                                                                        size_t length) {
    const unsigned char *p = (const unsigned char *)bytes;
    uint64_t crc0 = crc;
    HORGOS_INTERLEAVE(HORGOS_LONG, shift_long)
    HORGOS_INTERLEAVE(HORGOS_SHORT, shift_short)
    return (uint32_t)tail(crc0, p, length);
}

#else  // not x86-64: no hardware path; HorgosWire uses its portable slicing-by-8.

int horgos_crc32c_hardware_available(void) { return 0; }

// Never called: HorgosWire checks horgos_crc32c_hardware_available() first.
uint32_t horgos_crc32c_hardware_update(uint32_t crc, const void *bytes, size_t length) {
    (void)crc;
    (void)bytes;
    (void)length;
    __builtin_trap();
}

uint32_t horgos_crc32c_hardware_update_single(uint32_t crc, const void *bytes, size_t length) {
    (void)crc;
    (void)bytes;
    (void)length;
    __builtin_trap();
}

#endif
