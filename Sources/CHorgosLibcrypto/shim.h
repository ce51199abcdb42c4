// The few parts of the system libcrypto (OpenSSL 3) Horgos uses: reading and verifying X.509 CRLs.
// NIO-SSL's BoringSSL is linked into the same binaries; its symbols carry the CNIOBoringSSL_ prefix,
// so these unprefixed OpenSSL symbols resolve to the system library (checked by LibcryptoCoexistenceTests).
#ifndef HORGOS_LIBCRYPTO_SHIM_H
#define HORGOS_LIBCRYPTO_SHIM_H

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <time.h>

/// Number of revoked entries in a CRL (0 when it has none).
static inline int horgos_crl_revoked_count(const X509_CRL *crl) {
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED((X509_CRL *)crl);
    return revoked == NULL ? 0 : sk_X509_REVOKED_num(revoked);
}

/// The serial number of the index-th revoked entry, as the big-endian magnitude bytes of the INTEGER;
/// `*length` receives their count and `*negative` whether the INTEGER is negative.
static inline const unsigned char *horgos_crl_revoked_serial(
    const X509_CRL *crl, int index, int *length, int *negative) {
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED((X509_CRL *)crl);
    const X509_REVOKED *entry = sk_X509_REVOKED_value(revoked, index);
    const ASN1_INTEGER *serial = X509_REVOKED_get0_serialNumber(entry);
    *length = ASN1_STRING_length(serial);
    *negative = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
    return ASN1_STRING_get0_data(serial);
}

/// Seconds since the epoch of an ASN1_TIME, or -1 when it cannot be converted.
static inline long long horgos_asn1_time_epoch(const ASN1_TIME *time) {
    struct tm parts;
    if (time == NULL || ASN1_TIME_to_tm(time, &parts) != 1) return -1;
    return (long long)timegm(&parts);
}

/// The first queued libcrypto error as text (empty when none), clearing the queue.
static inline void horgos_last_error(char *buffer, size_t length) {
    unsigned long code = ERR_get_error();
    if (code == 0) {
        buffer[0] = 0;
    } else {
        ERR_error_string_n(code, buffer, length);
    }
    ERR_clear_error();
}

#endif
