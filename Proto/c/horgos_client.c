/*
 * horgos_client.c - a vehicle client built on the C reference codec, over TLS with OpenSSL.
 *
 *   usage: horgos_client HOST PORT CA_PEM CERT_PEM KEY_PEM VIN RECORDS START_MS [SERVER_NAME [gateway]]
 *
 * Connects with mutual TLS (verifying the server certificate against CA_PEM for SERVER_NAME, default
 * "localhost", sent as SNI), says HELLO (protocol 1.1), honours WELCOME's window and max_records,
 * sends RECORDS telemetry records from START_MS on through the resend queue, answers PING, checks a
 * PING of its own is answered, waits until every frame is acknowledged, then says BYE and waits for
 * the server's BYE. With `gateway` it says HELLO as a gateway (a gateway certificate) and sends
 * records for VIN, which may be any vehicle of the gateway's market.
 * On success it prints each record it sent as the CSV row `horgosctl export`
 * prints for it (without the header) and exits 0. Any ERROR, malformed server frame or rejected record
 * is reported on stderr with exit 1.
 *
 * Unlike the codec, this example uses the C library and OpenSSL freely.
 */
#include "horgos.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAMES 512
#define RECORDS_PER_FRAME 10

static struct hg_record records[MAX_FRAMES * RECORDS_PER_FRAME];
static int64_t frame_base[MAX_FRAMES];
static uint16_t frame_records[MAX_FRAMES];
static uint32_t frame_first[MAX_FRAMES];
static uint8_t in[1 << 18];
static size_t in_length;
static uint8_t out[1 << 17];

static void die(const char *what) {
    fprintf(stderr, "horgos_client: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void write_all(SSL *ssl, const uint8_t *bytes, size_t length) {
    while (length > 0) {
        int n = SSL_write(ssl, bytes, (int)length);
        if (n <= 0) die("TLS write failed");
        bytes += n;
        length -= (size_t)n;
    }
}

/* Reads until one whole server frame is buffered; returns it (consumed by the next call). */
static size_t consumed;
static struct hg_frame read_frame(SSL *ssl) {
    struct hg_frame frame;
    uint16_t error = 0;
    if (consumed) {
        memmove(in, in + consumed, in_length - consumed);
        in_length -= consumed;
        consumed = 0;
    }
    for (;;) {
        enum hg_scan_result r = hg_scan(in, in_length, sizeof in - HG_OVERHEAD, &frame, &error);
        int n;
        if (r == HG_SCAN_FRAME) { consumed = frame.frame_length; return frame; }
        if (r == HG_SCAN_ERROR) {
            /* A malformed server frame (PROTOCOL.md 6.5): close, back off, retry. */
            fprintf(stderr, "horgos_client: malformed server frame: %s\n", hg_error_name(error));
            exit(1);
        }
        n = SSL_read(ssl, in + in_length, (int)(sizeof in - in_length));
        if (n <= 0) {
            /* Under TLS 1.3 a refused client certificate arrives here, as an alert on the first read. */
            fprintf(stderr, "horgos_client: connection ended (%s)\n", in_length ? "inside a frame" : "between frames");
            ERR_print_errors_fp(stderr);
            exit(1);
        }
        in_length += (size_t)n;
    }
}

static void fail_on_error(const struct hg_frame *frame) {
    struct hg_error_frame e;
    if (frame->type != HG_ERROR) return;
    if (hg_decode_error(frame, &e) != HG_OK) die("malformed ERROR frame");
    fprintf(stderr, "horgos_client: ERROR %s (0x%04x) for sequence %lu: %.*s (action %d)\n", hg_error_name(e.code),
            e.code, (unsigned long)e.sequence, (int)e.reason_length, (const char *)e.reason, hg_error_action(e.code));
    exit(1);
}

static void fixed(char *buffer, size_t size, int64_t value, int scale) {
    int64_t divisor = 1;
    uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    int i;
    if (scale == 0) { snprintf(buffer, size, "%lld", (long long)value); return; }
    for (i = 0; i < scale; i++) divisor *= 10;
    snprintf(buffer, size, "%s%llu.%0*llu", value < 0 ? "-" : "", (unsigned long long)(magnitude / (uint64_t)divisor),
             scale, (unsigned long long)(magnitude % (uint64_t)divisor));
}

static void print_row(const char *vin, int64_t timestamp, const struct hg_record *r) {
    char time_text[32], f[10][32];
    time_t seconds = (time_t)(timestamp / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fixed(f[0], 32, r->latitude, 7);
    fixed(f[1], 32, r->longitude, 7);
    fixed(f[2], 32, r->odometer, 1);
    fixed(f[3], 32, r->speed, 1);
    fixed(f[4], 32, r->heading, 2);
    fixed(f[5], 32, r->pack_voltage, 1);
    fixed(f[6], 32, r->pack_current, 1);
    fixed(f[7], 32, r->aux_battery_voltage, 2);
    printf("%.17s,%s,%lld,%s,%s,%s,%s,%s,%s,%s,%u,%d,%d,%u,%u,%s,%lu,%u\n", vin, time_text, (long long)timestamp,
           f[0], f[1], f[2], f[3], f[4], f[5], f[6], r->soc, r->max_cell_temp, r->min_cell_temp, r->max_alarm_level,
           r->status, f[7], (unsigned long)r->alarm_flags, r->remaining_range);
}

/* Deterministic, varied records: both hemispheres, charging and discharging, reserved bits set. */
static void make_record(struct hg_record *r, uint32_t k, uint32_t offset_ms) {
    memset(r, 0, sizeof *r);
    r->time_offset_ms = offset_ms;
    r->latitude = k % 2 ? -335000000 - (int32_t)k * 17 : 251000000 + (int32_t)k * 1234;
    r->longitude = k % 3 ? -700000000 + (int32_t)k * 77 : 553000000 - (int32_t)k;
    r->odometer = 1000000u + k;
    r->speed = (uint16_t)(k * 13 % 5001);
    r->heading = (uint16_t)(k * 37 % 36000);
    r->pack_voltage = (uint16_t)(3500 + k % 100);
    r->pack_current = (int16_t)(k % 2 ? -1200 - (int32_t)k : 800 + (int32_t)k);
    r->soc = (uint8_t)(k % 101);
    r->max_cell_temp = (int8_t)(25 + k % 10);
    r->min_cell_temp = (int8_t)(-5 - (int32_t)(k % 10));
    r->max_alarm_level = (uint8_t)(k % 4);
    r->status = (uint16_t)(0x0049u | (k % 2) << 1 | (k % 7 == 0 ? 0x8000u : 0u));
    r->aux_battery_voltage = (uint16_t)(1372 - k % 50);
    r->alarm_flags = (1u << (k % 19)) | (k % 5 == 0 ? 0x80000000u : 0u);
    r->remaining_range = (uint16_t)(312 - k % 300);
}

static SSL *connect_tls(const char *host, const char *port, const char *ca, const char *cert, const char *key,
                        const char *server_name, SSL_CTX **out_ctx) {
    struct addrinfo hints, *address;
    int fd;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) die("cannot load the fleet CA");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) die("cannot load the vehicle certificate");
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) die("cannot load the vehicle key");
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &address) != 0) die("cannot resolve the server");
    fd = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
    if (fd < 0 || connect(fd, address->ai_addr, address->ai_addrlen) != 0) die("cannot connect");
    freeaddrinfo(address);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, server_name);   /* SNI: lets a load balancer route by region */
    if (SSL_set1_host(ssl, server_name) != 1) die("SSL_set1_host");
    if (SSL_connect(ssl) != 1) die("TLS handshake failed");
    *out_ctx = ctx;
    return ssl;
}

int main(int argc, char **argv) {
    SSL_CTX *ctx;
    SSL *ssl;
    struct hg_hello hello;
    struct hg_welcome welcome;
    struct hg_frame frame;
    struct hg_queue queue;
    static struct hg_queue_entry entries[MAX_FRAMES];
    const char *vin, *server_name;
    uint32_t total, frames, i, k = 0;
    uint16_t per_frame;
    int64_t start_ms;
    int pong_seen = 0;
    const uint64_t ping_opaque = 0x486f72676f732131ull;
    if (argc < 9) {
        fprintf(stderr, "usage: %s HOST PORT CA_PEM CERT_PEM KEY_PEM VIN RECORDS START_MS [SERVER_NAME [gateway]]\n",
                argv[0]);
        return 2;
    }
    vin = argv[6];
    total = (uint32_t)strtoul(argv[7], NULL, 10);
    start_ms = strtoll(argv[8], NULL, 10);
    server_name = argc > 9 ? argv[9] : "localhost";
    if (strlen(vin) != HG_VIN_LENGTH) die("the VIN must be 17 characters");
    ssl = connect_tls(argv[1], argv[2], argv[3], argv[4], argv[5], server_name, &ctx);

    memset(&hello, 0, sizeof hello);
    hello.client_kind = (uint8_t)(argc > 10 && strcmp(argv[10], "gateway") == 0 ? 2 : 1);
    hello.protocol_version = HG_VERSION;
    hello.protocol_minor = HG_PROTOCOL_MINOR;
    hello.client_time_ms = now_ms();
    hello.sw_version = "horgos-c-reference 1.1";
    hello.sw_version_length = (uint8_t)strlen(hello.sw_version);
    write_all(ssl, out, hg_encode_hello(out, sizeof out, &hello));
    frame = read_frame(ssl);
    fail_on_error(&frame);
    if (frame.type != HG_WELCOME || hg_decode_welcome(&frame, &welcome) != HG_OK) die("expected WELCOME");
    fprintf(stderr, "horgos_client: WELCOME window %u, max_records %u, horizon %s %lu s back %lu s ahead\n",
            welcome.ack_window, welcome.max_records, welcome.has_horizon ? "announced:" : "not announced",
            (unsigned long)welcome.horizon_past_seconds, (unsigned long)welcome.horizon_future_seconds);

    per_frame = hg_max_records(&welcome, HG_RECORD_SIZE_V1);
    if (per_frame > RECORDS_PER_FRAME) per_frame = RECORDS_PER_FRAME;
    if (per_frame == 0) die("WELCOME allows no record per frame");
    frames = (total + per_frame - 1) / per_frame;
    if (frames > MAX_FRAMES) die("too many records for this example");
    hg_queue_init(&queue, entries, MAX_FRAMES);
    for (i = 0; i < frames; i++) {
        uint16_t j;
        frame_base[i] = start_ms + (int64_t)i * per_frame * 1000;
        frame_first[i] = k;
        frame_records[i] = (uint16_t)(total - k < per_frame ? total - k : per_frame);
        for (j = 0; j < frame_records[i]; j++, k++) make_record(&records[k], k, (uint32_t)j * 1000u);
        hg_queue_push(&queue, i);
    }
    hg_queue_connected(&queue, welcome.ack_window);
    write_all(ssl, out, hg_encode_ping(out, sizeof out, HG_PING, ping_opaque));

    while (queue.count > 0 || !pong_seen) {
        uint32_t handle, sequence;
        while (hg_queue_next(&queue, &handle, &sequence)) {
            struct hg_telemetry batch;
            size_t n;
            batch.base_time_ms = frame_base[handle];
            memcpy(batch.vin, vin, HG_VIN_LENGTH);
            batch.record_size = HG_RECORD_SIZE_V1;
            batch.record_count = frame_records[handle];
            batch.records = &records[frame_first[handle]];
            n = hg_encode_telemetry(out, sizeof out, sequence, &batch);
            if (n == 0) die("encode failed");
            write_all(ssl, out, n);
        }
        frame = read_frame(ssl);
        fail_on_error(&frame);
        if (frame.type == HG_ACK) {
            struct hg_ack ack;
            if (hg_decode_ack(&frame, &ack) != HG_OK || hg_queue_ack(&queue, ack.ack_sequence) < 0) {
                die("malformed or impossible ACK");
            }
            if (ack.rejected_records) die("records outside the server's time horizon");
        } else if (frame.type == HG_PONG) {
            uint64_t opaque;
            if (hg_decode_ping(&frame, &opaque) != HG_OK || opaque != ping_opaque) die("PONG with the wrong opaque");
            pong_seen = 1;
        } else if (frame.type == HG_PING) {
            uint64_t opaque;
            if (hg_decode_ping(&frame, &opaque) != HG_OK) die("malformed PING");
            write_all(ssl, out, hg_encode_ping(out, sizeof out, HG_PONG, opaque));
        } else if (frame.type == HG_BYE) {
            die("the server said BYE before everything was acknowledged (reconnect and resend)");
        } else {
            die("unexpected server frame");
        }
    }
    write_all(ssl, out, hg_encode_bye(out, sizeof out, 0));
    frame = read_frame(ssl);
    fail_on_error(&frame);
    if (frame.type != HG_BYE) die("expected BYE after our BYE");
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    for (i = 0; i < frames; i++) {
        uint16_t j;
        for (j = 0; j < frame_records[i]; j++) {
            const struct hg_record *r = &records[frame_first[i] + j];
            print_row(vin, frame_base[i] + r->time_offset_ms, r);
        }
    }
    fprintf(stderr, "horgos_client: %lu records in %lu frames acknowledged\n", (unsigned long)total,
            (unsigned long)frames);
    return 0;
}
