/*
 * horgos.h - reference codec of the Horgos wire protocol 1.1 for vehicle and gateway firmware.
 *
 * C99, no dependencies beyond <stddef.h>/<stdint.h>, no allocation, no global state. Every multi-byte
 * value is read and written one byte at a time with shifts (never through a cast pointer or a
 * union), so the code is correct on little- and big-endian CPUs and at any alignment.
 *
 * What it does (PROTOCOL.md is the specification; section numbers refer to it):
 *   - encodes the frames a client sends: HELLO, TELEMETRY, EVENT, PING/PONG, BYE (section 4);
 *   - scans a received byte stream into frames with every frame check of section 2, in order;
 *   - decodes the frames a server sends: WELCOME (1.0 and 1.1), ACK, ERROR, PING/PONG, BYE, with
 *     every payload check of section 4;
 *   - CRC-32C (section 2.1);
 *   - the client's resend queue (hg_queue_*, section 6.3): ack window, cumulative ACK, what to keep
 *     and resend after a reconnect.
 *
 * Errors are the protocol's own codes (HG_ERR_*, section 7), so a unit can log what the server
 * would have said.
 */
#ifndef HORGOS_H
#define HORGOS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Constants (sections 2, 3, 4) ---- */
#define HG_MAGIC 0x4748u
#define HG_VERSION 1u
#define HG_PROTOCOL_MINOR 1u            /* this codec speaks 1.1 */
#define HG_HEADER_SIZE 12u
#define HG_OVERHEAD 16u                 /* header + CRC */
#define HG_DEFAULT_MAX_PAYLOAD 65536u
#define HG_RECORD_SIZE_V1 40u
#define HG_TELEMETRY_HEADER 28u
#define HG_EVENT_HEADER 32u
#define HG_DTC_SIZE 8u
#define HG_MAX_DTCS 1024u
#define HG_MAX_SW_VERSION 64u
#define HG_MAX_REASON 512u
#define HG_VIN_LENGTH 17u
#define HG_WELCOME_10 24u               /* WELCOME payload length, protocol 1.0 */
#define HG_WELCOME_11 32u               /* ... protocol 1.1 (time horizon appended) */

/* Frame types (section 4). */
enum hg_type {
    HG_HELLO = 0x01, HG_WELCOME = 0x02, HG_TELEMETRY = 0x10, HG_EVENT = 0x11, HG_ACK = 0x20,
    HG_ERROR = 0x21, HG_PING = 0x30, HG_PONG = 0x31, HG_BYE = 0x40
};

/* Error codes (section 7); 0 is success. */
enum hg_error {
    HG_OK = 0,
    HG_ERR_BAD_MAGIC = 0x0101, HG_ERR_UNSUPPORTED_VERSION = 0x0102, HG_ERR_UNKNOWN_FRAME_TYPE = 0x0103,
    HG_ERR_BAD_CHECKSUM = 0x0104, HG_ERR_FRAME_TOO_LARGE = 0x0105, HG_ERR_TRUNCATED_FRAME = 0x0106,
    HG_ERR_BAD_PAYLOAD_LENGTH = 0x0201, HG_ERR_RECORD_COUNT_MISMATCH = 0x0202,
    HG_ERR_RECORD_SIZE_TOO_SMALL = 0x0203, HG_ERR_INVALID_VIN = 0x0204, HG_ERR_EMPTY_BATCH = 0x0205,
    HG_ERR_TOO_MANY_RECORDS = 0x0206, HG_ERR_TOO_MANY_DTCS = 0x0207, HG_ERR_INVALID_FIELD_VALUE = 0x0208,
    HG_ERR_INVALID_PAYLOAD = 0x0209,
    HG_ERR_HELLO_REQUIRED = 0x0301, HG_ERR_UNEXPECTED_FRAME = 0x0302, HG_ERR_SEQUENCE_GAP = 0x0303,
    HG_ERR_WINDOW_EXCEEDED = 0x0304, HG_ERR_VIN_NOT_ALLOWED = 0x0305, HG_ERR_ROLE_MISMATCH = 0x0306,
    HG_ERR_UNKNOWN_MARKET = 0x0401, HG_ERR_CERTIFICATE_REVOKED = 0x0402, HG_ERR_IDENTITY_INVALID = 0x0403,
    HG_ERR_SERVER_BUSY = 0x0501, HG_ERR_INTERNAL_ERROR = 0x0502
};

/* What a client does after an ERROR (section 7): retry, fix the frame, or give up. */
enum hg_action { HG_ACTION_RETRY = 0, HG_ACTION_FIX = 1, HG_ACTION_GIVE_UP = 2 };

/* The action for `code`; a code this codec does not know is HG_ACTION_RETRY (section 4.6). */
enum hg_action hg_error_action(uint16_t code);
/* The section 7 name of `code` ("?" for an unknown code). */
const char *hg_error_name(uint16_t code);

/* ---- CRC-32C (section 2.1) ---- */
uint32_t hg_crc32c(const uint8_t *bytes, size_t length);

/* ---- Values ---- */

/* HELLO (4.1). */
struct hg_hello {
    uint8_t client_kind;        /* 1 vehicle, 2 gateway */
    uint8_t protocol_version;   /* 1 */
    uint8_t protocol_minor;     /* highest minor version spoken: 1 for this codec (0 = a 1.0 unit) */
    int64_t client_time_ms;     /* 0 if unknown */
    const char *sw_version;     /* printable ASCII */
    uint8_t sw_version_length;  /* 0..64 */
};

/* One telemetry record (4.3), raw wire integers. */
struct hg_record {
    uint32_t time_offset_ms;
    int32_t latitude, longitude;
    uint32_t odometer;
    uint16_t speed, heading, pack_voltage;
    int16_t pack_current;
    uint8_t soc;
    int8_t max_cell_temp, min_cell_temp;
    uint8_t max_alarm_level;
    uint16_t status, aux_battery_voltage;
    uint32_t alarm_flags;
    uint16_t remaining_range;
};

/* TELEMETRY (4.3). */
struct hg_telemetry {
    int64_t base_time_ms;
    char vin[HG_VIN_LENGTH];    /* not NUL-terminated */
    uint8_t record_size;        /* 40 (larger: zero padding, as a later minor version may send) */
    uint16_t record_count;
    const struct hg_record *records;
};

/* One DTC of an EVENT (4.4). */
struct hg_dtc {
    uint32_t code;
    uint8_t source;             /* 1..4 */
    uint8_t state;              /* 0 cleared, 1 active */
};

/* EVENT (4.4). */
struct hg_event {
    int64_t time_ms;
    char vin[HG_VIN_LENGTH];
    uint8_t max_alarm_level;
    uint32_t alarm_flags;
    uint16_t dtc_count;
    const struct hg_dtc *dtcs;
};

/* WELCOME (4.2); has_horizon is 1 for a 1.1 WELCOME. */
struct hg_welcome {
    int64_t server_time_ms;
    uint32_t max_payload;
    uint16_t ack_window, heartbeat_seconds, idle_timeout_seconds, max_records;
    int has_horizon;
    uint32_t horizon_past_seconds, horizon_future_seconds;
};

/* ACK (4.5). */
struct hg_ack {
    uint32_t ack_sequence;
    uint32_t rejected_records;
};

/* ERROR (4.6); reason points into the frame (not NUL-terminated, valid UTF-8). */
struct hg_error_frame {
    uint16_t code;
    uint32_t sequence;
    const uint8_t *reason;
    size_t reason_length;
};

/* A frame found in a receive buffer by hg_scan; payload points into that buffer. */
struct hg_frame {
    uint8_t type;
    uint32_t sequence;
    uint32_t payload_length;
    const uint8_t *payload;
    size_t frame_length;        /* 16 + payload_length */
};

/* ---- Encoding: each returns the bytes written, or 0 if `capacity` is too small or a value
 *      cannot be encoded (a length over its field). Values are written as given: the codec does
 *      not range-check records, so a test can build frames the server must reject. ---- */
size_t hg_frame_size_telemetry(uint16_t record_count, uint8_t record_size);
size_t hg_encode_hello(uint8_t *out, size_t capacity, const struct hg_hello *hello);
size_t hg_encode_telemetry(uint8_t *out, size_t capacity, uint32_t sequence, const struct hg_telemetry *batch);
size_t hg_encode_event(uint8_t *out, size_t capacity, uint32_t sequence, const struct hg_event *event);
/* type is HG_PING or HG_PONG (a PONG echoes the PING's opaque). */
size_t hg_encode_ping(uint8_t *out, size_t capacity, uint8_t type, uint64_t opaque);
size_t hg_encode_bye(uint8_t *out, size_t capacity, uint8_t reason);

/* ---- Decoding ---- */

/* hg_scan results. */
enum hg_scan_result { HG_SCAN_FRAME = 1, HG_SCAN_NEED_MORE = 0, HG_SCAN_ERROR = -1 };

/*
 * Looks for one whole frame at the start of bytes[0..length): runs the frame checks of section 2
 * in their order (magic, version, type as soon as their bytes are there; the length against
 * max_payload from the header alone; then the CRC). HG_SCAN_FRAME fills *frame; HG_SCAN_NEED_MORE
 * means wait for more bytes (a stream that ends now is HG_ERR_TRUNCATED_FRAME); HG_SCAN_ERROR sets
 * *error. Payload checks are separate (hg_decode_*).
 */
enum hg_scan_result hg_scan(const uint8_t *bytes, size_t length, uint32_t max_payload,
                            struct hg_frame *frame, uint16_t *error);

/* Payload decoders: HG_OK or the section 4 error; they do not look at frame->type. */
uint16_t hg_decode_welcome(const struct hg_frame *frame, struct hg_welcome *out);
uint16_t hg_decode_ack(const struct hg_frame *frame, struct hg_ack *out);
uint16_t hg_decode_error(const struct hg_frame *frame, struct hg_error_frame *out);
uint16_t hg_decode_ping(const struct hg_frame *frame, uint64_t *opaque);   /* PING and PONG */
uint16_t hg_decode_bye(const struct hg_frame *frame, uint8_t *reason);

/* Records of max_payload at record_size bytes each, capped by WELCOME's max_records (section 3). */
uint16_t hg_max_records(const struct hg_welcome *welcome, uint8_t record_size);

/* ---- The resend queue (section 6.3) ----
 *
 * A unit keeps every data frame until an ACK covers it. The queue tracks the unit's own handles
 * (an index into its flash ring, say) in send order; the unit keeps the frame content itself.
 *
 *   states:  DISCONNECTED --hg_queue_connected(window)--> CONNECTED --hg_queue_disconnected--> DISCONNECTED
 *
 *   CONNECTED:    hg_queue_next() hands out the oldest unsent entry with the next sequence (1, 2, ...)
 *                 while fewer than `window` entries are in flight; hg_queue_ack(n) releases every entry
 *                 with sequence <= n (cumulative) and refuses an ACK that goes backwards or covers
 *                 a sequence not sent (a malformed server frame: disconnect, retry); an ACK equal to
 *                 the last releases nothing and is not refused (PROTOCOL.md 4.5).
 *   DISCONNECTED: every entry not released is kept, in order, marked unsent; after the next WELCOME
 *                 they are resent first, renumbered from 1 (the server de-duplicates by VIN and
 *                 record timestamp, so a frame that was stored but not acknowledged is safe to resend).
 *
 * Entries are added with hg_queue_push at any time (also while disconnected) until the queue is full.
 */
struct hg_queue_entry {
    uint32_t handle;            /* the unit's reference to the frame content */
    uint32_t sequence;          /* 0 while unsent on this connection */
};

struct hg_queue {
    struct hg_queue_entry *entries;     /* caller-owned storage, `capacity` entries */
    uint16_t capacity;
    uint16_t head;                      /* oldest entry */
    uint16_t count;                     /* entries held (in flight + unsent) */
    uint16_t in_flight;                 /* sent on this connection, not acknowledged */
    uint16_t window;                    /* from WELCOME; 0 while disconnected */
    uint32_t next_sequence;             /* sequence of the next data frame on this connection */
    uint32_t acked;                     /* highest ACK on this connection */
};

void hg_queue_init(struct hg_queue *queue, struct hg_queue_entry *storage, uint16_t capacity);
/* Returns 0, or -1 when the queue is full (the unit must stop producing or drop its oldest data). */
int hg_queue_push(struct hg_queue *queue, uint32_t handle);
/* WELCOME arrived: numbering restarts at 1, every held entry is (re)sent in order. */
void hg_queue_connected(struct hg_queue *queue, uint16_t ack_window);
/* Returns 1 and the entry to send now with its sequence, or 0 (nothing unsent, or the window is full). */
int hg_queue_next(struct hg_queue *queue, uint32_t *handle, uint32_t *sequence);
/* ACK n arrived: releases entries up to n; returns how many, or -1 if the ACK is not valid now. */
int hg_queue_ack(struct hg_queue *queue, uint32_t ack_sequence);
/* The connection ended (BYE, ERROR, close, timeout): returns the entries kept for resending. */
uint16_t hg_queue_disconnected(struct hg_queue *queue);

#ifdef __cplusplus
}
#endif
#endif
