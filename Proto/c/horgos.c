/*
 * horgos.c - reference codec of the Horgos wire protocol 1.1 (see horgos.h and ../PROTOCOL.md).
 *
 * Byte order: every integer goes through put_le / get_le below, which move one byte at a time with
 * shifts of unsigned values. No pointer is cast to a wider type and no union is used, so the result
 * does not depend on the host's byte order or alignment rules (C99 6.5.7: shifts are defined on
 * values, not on their representation in memory).
 */
#include "horgos.h"

/* ---- Little-endian bytes ---- */

static void put_le(uint8_t *p, uint64_t value, unsigned size) {
    unsigned i;
    for (i = 0; i < size; i++) {
        p[i] = (uint8_t)(value & 0xFFu);
        value >>= 8;
    }
}

static uint64_t get_le(const uint8_t *p, unsigned size) {
    uint64_t value = 0;
    unsigned i = size;
    while (i-- > 0) value = (value << 8) | p[i];
    return value;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)get_le(p, 2); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get_le(p, 4); }

/* Two's complement without implementation-defined conversions: an unsigned 64-bit pattern to int64. */
static int64_t to_i64(uint64_t u) {
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

static uint64_t from_i64(int64_t v) { return (uint64_t)v; } /* C99 6.3.1.3p2: modulo 2^64 */

/* ---- CRC-32C ---- */

uint32_t hg_crc32c(const uint8_t *bytes, size_t length) {
    uint32_t crc = 0xFFFFFFFFu;
    while (length--) {
        int k;
        crc ^= *bytes++;
        for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* ---- Errors ---- */

const char *hg_error_name(uint16_t code) {
    switch (code) {
    case HG_OK: return "OK";
    case HG_ERR_BAD_MAGIC: return "BAD_MAGIC";
    case HG_ERR_UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    case HG_ERR_UNKNOWN_FRAME_TYPE: return "UNKNOWN_FRAME_TYPE";
    case HG_ERR_BAD_CHECKSUM: return "BAD_CHECKSUM";
    case HG_ERR_FRAME_TOO_LARGE: return "FRAME_TOO_LARGE";
    case HG_ERR_TRUNCATED_FRAME: return "TRUNCATED_FRAME";
    case HG_ERR_BAD_PAYLOAD_LENGTH: return "BAD_PAYLOAD_LENGTH";
    case HG_ERR_RECORD_COUNT_MISMATCH: return "RECORD_COUNT_MISMATCH";
    case HG_ERR_RECORD_SIZE_TOO_SMALL: return "RECORD_SIZE_TOO_SMALL";
    case HG_ERR_INVALID_VIN: return "INVALID_VIN";
    case HG_ERR_EMPTY_BATCH: return "EMPTY_BATCH";
    case HG_ERR_TOO_MANY_RECORDS: return "TOO_MANY_RECORDS";
    case HG_ERR_TOO_MANY_DTCS: return "TOO_MANY_DTCS";
    case HG_ERR_INVALID_FIELD_VALUE: return "INVALID_FIELD_VALUE";
    case HG_ERR_INVALID_PAYLOAD: return "INVALID_PAYLOAD";
    case HG_ERR_HELLO_REQUIRED: return "HELLO_REQUIRED";
    case HG_ERR_UNEXPECTED_FRAME: return "UNEXPECTED_FRAME";
    case HG_ERR_SEQUENCE_GAP: return "SEQUENCE_GAP";
    case HG_ERR_WINDOW_EXCEEDED: return "WINDOW_EXCEEDED";
    case HG_ERR_VIN_NOT_ALLOWED: return "VIN_NOT_ALLOWED";
    case HG_ERR_ROLE_MISMATCH: return "ROLE_MISMATCH";
    case HG_ERR_UNKNOWN_MARKET: return "UNKNOWN_MARKET";
    case HG_ERR_CERTIFICATE_REVOKED: return "CERTIFICATE_REVOKED";
    case HG_ERR_IDENTITY_INVALID: return "IDENTITY_INVALID";
    case HG_ERR_SERVER_BUSY: return "SERVER_BUSY";
    case HG_ERR_INTERNAL_ERROR: return "INTERNAL_ERROR";
    default: return "?";
    }
}

enum hg_action hg_error_action(uint16_t code) {
    switch (code) {
    case HG_ERR_VIN_NOT_ALLOWED:
    case HG_ERR_UNKNOWN_MARKET:
    case HG_ERR_CERTIFICATE_REVOKED:
    case HG_ERR_IDENTITY_INVALID:
        return HG_ACTION_GIVE_UP;
    case HG_ERR_BAD_CHECKSUM:
    case HG_ERR_TRUNCATED_FRAME:
    case HG_ERR_SEQUENCE_GAP:
    case HG_ERR_WINDOW_EXCEEDED:
    case HG_ERR_SERVER_BUSY:
    case HG_ERR_INTERNAL_ERROR:
        return HG_ACTION_RETRY;
    default:
        /* Every other known code is the client's fault; an unknown code is "retry" (4.6). */
        return hg_error_name(code)[0] == '?' ? HG_ACTION_RETRY : HG_ACTION_FIX;
    }
}

/* ---- Encoding ---- */

/* Writes header, lets the payload already be at out+12, appends the CRC; returns the frame size. */
static size_t finish_frame(uint8_t *out, uint8_t type, uint32_t sequence, size_t payload_length) {
    put_le(out, HG_MAGIC, 2);
    out[2] = HG_VERSION;
    out[3] = type;
    put_le(out + 4, sequence, 4);
    put_le(out + 8, payload_length, 4);
    put_le(out + HG_HEADER_SIZE + payload_length, hg_crc32c(out, HG_HEADER_SIZE + payload_length), 4);
    return HG_OVERHEAD + payload_length;
}

size_t hg_encode_hello(uint8_t *out, size_t capacity, const struct hg_hello *hello) {
    size_t length = 13u + hello->sw_version_length;
    uint8_t *p = out + HG_HEADER_SIZE;
    size_t i;
    if (capacity < HG_OVERHEAD + length) return 0;
    p[0] = hello->client_kind;
    p[1] = hello->protocol_version;
    p[2] = hello->protocol_minor;
    p[3] = 0;
    put_le(p + 4, from_i64(hello->client_time_ms), 8);
    p[12] = hello->sw_version_length;
    for (i = 0; i < hello->sw_version_length; i++) p[13 + i] = (uint8_t)hello->sw_version[i];
    return finish_frame(out, HG_HELLO, 0, length);
}

size_t hg_frame_size_telemetry(uint16_t record_count, uint8_t record_size) {
    return HG_OVERHEAD + HG_TELEMETRY_HEADER + (size_t)record_count * record_size;
}

static void put_record(uint8_t *p, const struct hg_record *r) {
    put_le(p + 0, r->time_offset_ms, 4);
    put_le(p + 4, (uint32_t)r->latitude, 4);
    put_le(p + 8, (uint32_t)r->longitude, 4);
    put_le(p + 12, r->odometer, 4);
    put_le(p + 16, r->speed, 2);
    put_le(p + 18, r->heading, 2);
    put_le(p + 20, r->pack_voltage, 2);
    put_le(p + 22, (uint16_t)r->pack_current, 2);
    p[24] = r->soc;
    p[25] = (uint8_t)r->max_cell_temp;
    p[26] = (uint8_t)r->min_cell_temp;
    p[27] = r->max_alarm_level;
    put_le(p + 28, r->status, 2);
    put_le(p + 30, r->aux_battery_voltage, 2);
    put_le(p + 32, r->alarm_flags, 4);
    put_le(p + 36, r->remaining_range, 2);
    put_le(p + 38, 0, 2);
}

size_t hg_encode_telemetry(uint8_t *out, size_t capacity, uint32_t sequence, const struct hg_telemetry *batch) {
    size_t length = HG_TELEMETRY_HEADER + (size_t)batch->record_count * batch->record_size;
    uint8_t *p = out + HG_HEADER_SIZE;
    size_t i, k;
    if (batch->record_size < HG_RECORD_SIZE_V1 || capacity < HG_OVERHEAD + length) return 0;
    put_le(p, from_i64(batch->base_time_ms), 8);
    for (i = 0; i < HG_VIN_LENGTH; i++) p[8 + i] = (uint8_t)batch->vin[i];
    p[25] = batch->record_size;
    put_le(p + 26, batch->record_count, 2);
    for (i = 0; i < batch->record_count; i++) {
        uint8_t *r = p + HG_TELEMETRY_HEADER + i * batch->record_size;
        put_record(r, &batch->records[i]);
        for (k = HG_RECORD_SIZE_V1; k < batch->record_size; k++) r[k] = 0;
    }
    return finish_frame(out, HG_TELEMETRY, sequence, length);
}

size_t hg_encode_event(uint8_t *out, size_t capacity, uint32_t sequence, const struct hg_event *event) {
    size_t length = HG_EVENT_HEADER + (size_t)event->dtc_count * HG_DTC_SIZE;
    uint8_t *p = out + HG_HEADER_SIZE;
    size_t i;
    if (capacity < HG_OVERHEAD + length) return 0;
    put_le(p, from_i64(event->time_ms), 8);
    for (i = 0; i < HG_VIN_LENGTH; i++) p[8 + i] = (uint8_t)event->vin[i];
    p[25] = event->max_alarm_level;
    put_le(p + 26, event->alarm_flags, 4);
    put_le(p + 30, event->dtc_count, 2);
    for (i = 0; i < event->dtc_count; i++) {
        uint8_t *d = p + HG_EVENT_HEADER + i * HG_DTC_SIZE;
        put_le(d, event->dtcs[i].code, 4);
        d[4] = event->dtcs[i].source;
        d[5] = event->dtcs[i].state;
        put_le(d + 6, 0, 2);
    }
    return finish_frame(out, HG_EVENT, sequence, length);
}

size_t hg_encode_ping(uint8_t *out, size_t capacity, uint8_t type, uint64_t opaque) {
    if (capacity < HG_OVERHEAD + 8u || (type != HG_PING && type != HG_PONG)) return 0;
    put_le(out + HG_HEADER_SIZE, opaque, 8);
    return finish_frame(out, type, 0, 8);
}

size_t hg_encode_bye(uint8_t *out, size_t capacity, uint8_t reason) {
    if (capacity < HG_OVERHEAD + 4u) return 0;
    out[HG_HEADER_SIZE] = reason;
    put_le(out + HG_HEADER_SIZE + 1, 0, 3);
    return finish_frame(out, HG_BYE, 0, 4);
}

/* ---- Decoding ---- */

static int known_type(uint8_t type) {
    switch (type) {
    case HG_HELLO: case HG_WELCOME: case HG_TELEMETRY: case HG_EVENT: case HG_ACK:
    case HG_ERROR: case HG_PING: case HG_PONG: case HG_BYE:
        return 1;
    default:
        return 0;
    }
}

enum hg_scan_result hg_scan(const uint8_t *bytes, size_t length, uint32_t max_payload,
                            struct hg_frame *frame, uint16_t *error) {
    uint32_t payload_length;
    size_t total;
    /* Checks 2-4 apply as soon as the bytes they look at are there (section 2, check 1). */
    if (length >= 2 && get16(bytes) != HG_MAGIC) { *error = HG_ERR_BAD_MAGIC; return HG_SCAN_ERROR; }
    if (length >= 3 && bytes[2] != HG_VERSION) { *error = HG_ERR_UNSUPPORTED_VERSION; return HG_SCAN_ERROR; }
    if (length >= 4 && !known_type(bytes[3])) { *error = HG_ERR_UNKNOWN_FRAME_TYPE; return HG_SCAN_ERROR; }
    if (length < HG_HEADER_SIZE) return HG_SCAN_NEED_MORE;
    payload_length = get32(bytes + 8);
    if (payload_length > max_payload) { *error = HG_ERR_FRAME_TOO_LARGE; return HG_SCAN_ERROR; }
    total = (size_t)HG_OVERHEAD + payload_length;
    if (length < total) return HG_SCAN_NEED_MORE;
    if (get32(bytes + HG_HEADER_SIZE + payload_length) != hg_crc32c(bytes, HG_HEADER_SIZE + payload_length)) {
        *error = HG_ERR_BAD_CHECKSUM;
        return HG_SCAN_ERROR;
    }
    frame->type = bytes[3];
    frame->sequence = get32(bytes + 4);
    frame->payload_length = payload_length;
    frame->payload = bytes + HG_HEADER_SIZE;
    frame->frame_length = total;
    return HG_SCAN_FRAME;
}

uint16_t hg_decode_welcome(const struct hg_frame *frame, struct hg_welcome *out) {
    const uint8_t *p = frame->payload;
    uint16_t window;
    if (frame->payload_length != HG_WELCOME_10 && frame->payload_length < HG_WELCOME_11) {
        return HG_ERR_BAD_PAYLOAD_LENGTH;
    }
    window = get16(p + 12);
    if (window == 0 || window > 1024) return HG_ERR_INVALID_FIELD_VALUE;
    out->server_time_ms = to_i64(get_le(p, 8));
    out->max_payload = get32(p + 8);
    out->ack_window = window;
    out->heartbeat_seconds = get16(p + 14);
    out->idle_timeout_seconds = get16(p + 16);
    out->max_records = get16(p + 18);
    out->has_horizon = frame->payload_length >= HG_WELCOME_11;
    out->horizon_past_seconds = out->has_horizon ? get32(p + 24) : 0;
    out->horizon_future_seconds = out->has_horizon ? get32(p + 28) : 0;
    return HG_OK;
}

uint16_t hg_decode_ack(const struct hg_frame *frame, struct hg_ack *out) {
    if (frame->payload_length != 8) return HG_ERR_BAD_PAYLOAD_LENGTH;
    out->ack_sequence = get32(frame->payload);
    out->rejected_records = get32(frame->payload + 4);
    return HG_OK;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need, k;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1Fu; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0Fu; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07u; min = 0x10000; }
        else return 0;
        if (n - i <= need) return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return 0;
        i += need + 1;
    }
    return 1;
}

uint16_t hg_decode_error(const struct hg_frame *frame, struct hg_error_frame *out) {
    const uint8_t *p = frame->payload;
    /* Checked in this order (4.6): length 8..520, then the reason's UTF-8. */
    if (frame->payload_length < 8 || frame->payload_length > 8 + HG_MAX_REASON) return HG_ERR_BAD_PAYLOAD_LENGTH;
    if (!valid_utf8(p + 8, frame->payload_length - 8)) return HG_ERR_INVALID_PAYLOAD;
    out->code = get16(p);
    out->sequence = get32(p + 4);
    out->reason = p + 8;
    out->reason_length = frame->payload_length - 8;
    return HG_OK;
}

uint16_t hg_decode_ping(const struct hg_frame *frame, uint64_t *opaque) {
    if (frame->payload_length != 8) return HG_ERR_BAD_PAYLOAD_LENGTH;
    *opaque = get_le(frame->payload, 8);
    return HG_OK;
}

uint16_t hg_decode_bye(const struct hg_frame *frame, uint8_t *reason) {
    if (frame->payload_length != 4) return HG_ERR_BAD_PAYLOAD_LENGTH;
    if (frame->payload[0] > 4) return HG_ERR_INVALID_PAYLOAD;
    *reason = frame->payload[0];
    return HG_OK;
}

uint16_t hg_max_records(const struct hg_welcome *welcome, uint8_t record_size) {
    uint32_t fit;
    if (record_size == 0 || welcome->max_payload < HG_TELEMETRY_HEADER) return 0;
    fit = (welcome->max_payload - HG_TELEMETRY_HEADER) / record_size;
    return fit < welcome->max_records ? (uint16_t)fit : welcome->max_records;
}

/* ---- The resend queue ---- */

static struct hg_queue_entry *entry_at(struct hg_queue *queue, uint16_t index) {
    return &queue->entries[((uint32_t)queue->head + index) % queue->capacity];
}

void hg_queue_init(struct hg_queue *queue, struct hg_queue_entry *storage, uint16_t capacity) {
    queue->entries = storage;
    queue->capacity = capacity;
    queue->head = 0;
    queue->count = 0;
    queue->in_flight = 0;
    queue->window = 0;
    queue->next_sequence = 1;
    queue->acked = 0;
}

int hg_queue_push(struct hg_queue *queue, uint32_t handle) {
    struct hg_queue_entry *entry;
    if (queue->count >= queue->capacity) return -1;
    entry = entry_at(queue, queue->count);
    entry->handle = handle;
    entry->sequence = 0;
    queue->count++;
    return 0;
}

void hg_queue_connected(struct hg_queue *queue, uint16_t ack_window) {
    uint16_t i;
    for (i = 0; i < queue->count; i++) entry_at(queue, i)->sequence = 0;
    queue->in_flight = 0;
    queue->window = ack_window;
    queue->next_sequence = 1;
    queue->acked = 0;
}

int hg_queue_next(struct hg_queue *queue, uint32_t *handle, uint32_t *sequence) {
    struct hg_queue_entry *entry;
    /* Not connected, window full, nothing unsent, or 2^32-1 frames sent (BYE and reconnect: 5). */
    if (queue->window == 0 || queue->in_flight >= queue->window || queue->in_flight >= queue->count) return 0;
    if (queue->next_sequence == 0) return 0;
    entry = entry_at(queue, queue->in_flight);
    entry->sequence = queue->next_sequence++;
    queue->in_flight++;
    *handle = entry->handle;
    *sequence = entry->sequence;
    return 1;
}

int hg_queue_ack(struct hg_queue *queue, uint32_t ack_sequence) {
    uint32_t released;
    uint32_t last_sent = queue->acked + queue->in_flight;
    if (queue->window == 0 || ack_sequence < queue->acked || ack_sequence > last_sent) return -1;
    released = ack_sequence - queue->acked;
    queue->head = (uint16_t)(((uint32_t)queue->head + released) % queue->capacity);
    queue->count = (uint16_t)(queue->count - released);
    queue->in_flight = (uint16_t)(queue->in_flight - released);
    queue->acked = ack_sequence;
    return (int)released;
}

uint16_t hg_queue_disconnected(struct hg_queue *queue) {
    uint16_t i;
    for (i = 0; i < queue->in_flight; i++) entry_at(queue, i)->sequence = 0;
    queue->in_flight = 0;
    queue->window = 0;
    return queue->count;
}
