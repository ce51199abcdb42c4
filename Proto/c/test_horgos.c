/*
 * test_horgos.c - runs the C codec against every vector and every session trace of ../vectors/.
 *
 *   usage: test_horgos VECTOR_DIRECTORY
 *
 * Valid vectors: each frame of the stream is scanned (frame checks); a frame of a type the server
 * sends (WELCOME, ACK, ERROR, PING, PONG, BYE) is decoded and every listed value compared; a frame
 * of a type the client sends (HELLO, TELEMETRY, EVENT, PING, BYE) is encoded again from the listed
 * values and must equal the vector's bytes. Invalid vectors: the codec must fail with the named error
 * where it implements the check (all frame checks; payload checks of server frame types). Traces:
 * every client frame passes the frame checks or the server's answer is that ERROR, and the resend
 * queue agrees with the server on sequence numbers, the ack window and cumulative ACKs.
 *
 * Test code may use the C library freely; the codec (horgos.c) uses none of it.
 */
#include "horgos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;
#define FAIL(...) do { failures++; fprintf(stderr, "FAIL "); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } while (0)
#define CHECK(cond, ...) do { checks++; if (!(cond)) FAIL(__VA_ARGS__); } while (0)

/* ---- Text helpers ---- */

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    long size;
    char *text;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) { fclose(f); free(text); return NULL; }
    text[size] = 0;
    fclose(f);
    return text;
}

/* Next line of *cursor, trimmed, NUL-terminated in place; NULL at the end. */
static char *next_line(char **cursor) {
    char *line = *cursor, *end;
    if (!line || !*line) return NULL;
    end = strchr(line, '\n');
    if (end) { *end = 0; *cursor = end + 1; } else { *cursor = line + strlen(line); }
    while (*line == ' ' || *line == '\t') line++;
    end = line + strlen(line);
    while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = 0;
    return line;
}

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static size_t parse_hex(const char *s, uint8_t *out, size_t at, size_t capacity) {
    while (*s) {
        unsigned v;
        if (*s == ' ') { s++; continue; }
        if (sscanf(s, "%2x", &v) != 1 || at >= capacity) { FAIL("bad hex near %.10s", s); return at; }
        out[at++] = (uint8_t)v;
        s += 2;
    }
    return at;
}

/* Unescapes a quoted value ("...", with \" \\ \xNN) into out; returns its length. */
static size_t unquote(const char *v, uint8_t *out, size_t capacity) {
    size_t n = 0;
    if (*v != '"') return 0;
    v++;
    while (*v && *v != '"' && n < capacity) {
        if (v[0] == '\\' && v[1] == 'x') { unsigned b; sscanf(v + 2, "%2x", &b); out[n++] = (uint8_t)b; v += 4; }
        else if (v[0] == '\\') { out[n++] = (uint8_t)v[1]; v += 2; }
        else out[n++] = (uint8_t)*v++;
    }
    return n;
}

static long long num(const char *v) { return strtoll(v, NULL, 10); }
static unsigned long long unum(const char *v) { return strtoull(v, NULL, 10); }

/* ---- Vectors ---- */

#define MAX_FIELDS 80000
#define MAX_FRAMES 16
#define STREAM_CAPACITY (1u << 20)

struct field { const char *name; const char *value; };
struct vector {
    const char *name;
    uint32_t max_payload;
    const char *error;
    const char *unlisted_bytes;     /* the vector's bytes hold something its listed values do not */
    size_t length;
    int frame_count;
    int first_field[MAX_FRAMES + 1];
};

static uint8_t stream[STREAM_CAPACITY];
static struct field fields[MAX_FIELDS];
static int field_count;
static struct hg_record records[2048];
static struct hg_dtc dtcs[1100];
static uint8_t encoded[STREAM_CAPACITY];
static int skipped_payload_checks, encoded_frames, decoded_frames;

static const char *type_name(uint8_t type) {
    switch (type) {
    case HG_HELLO: return "HELLO"; case HG_WELCOME: return "WELCOME"; case HG_TELEMETRY: return "TELEMETRY";
    case HG_EVENT: return "EVENT"; case HG_ACK: return "ACK"; case HG_ERROR: return "ERROR";
    case HG_PING: return "PING"; case HG_PONG: return "PONG"; case HG_BYE: return "BYE";
    default: return "?";
    }
}

/* Compares a decoded value with the listed one; unlisted names are ignored by the caller. */
static void expect_value(const struct vector *v, const char *name, const char *listed, const char *decoded) {
    CHECK(strcmp(listed, decoded) == 0, "%s: %s = %s, listed %s", v->name, name, decoded, listed);
}

/* Decodes a server-side frame and checks the listed values; returns the decode error. */
static uint16_t check_decoded(const struct vector *v, const struct hg_frame *frame, int group) {
    char text[64];
    uint16_t error = HG_OK;
    int i;
    struct hg_welcome w;
    struct hg_ack a;
    struct hg_error_frame e;
    uint64_t opaque = 0;
    uint8_t reason = 0;
    memset(&w, 0, sizeof w);
    memset(&a, 0, sizeof a);
    memset(&e, 0, sizeof e);
    switch (frame->type) {
    case HG_WELCOME: error = hg_decode_welcome(frame, &w); break;
    case HG_ACK: error = hg_decode_ack(frame, &a); break;
    case HG_ERROR: error = hg_decode_error(frame, &e); break;
    case HG_PING: case HG_PONG: error = hg_decode_ping(frame, &opaque); break;
    case HG_BYE: error = hg_decode_bye(frame, &reason); break;
    default: return HG_OK;
    }
    if (error != HG_OK || group < 0) return error;
    decoded_frames++;
    for (i = v->first_field[group]; i < v->first_field[group + 1]; i++) {
        const char *n = fields[i].name, *val = fields[i].value;
        text[0] = 0;
        if (!strcmp(n, "type")) strcpy(text, type_name(frame->type));
        else if (!strcmp(n, "sequence")) sprintf(text, "%lu", (unsigned long)frame->sequence);
        else if (!strcmp(n, "payload_length")) sprintf(text, "%lu", (unsigned long)frame->payload_length);
        else if (!strcmp(n, "server_time_ms")) sprintf(text, "%lld", (long long)w.server_time_ms);
        else if (!strcmp(n, "max_payload")) sprintf(text, "%lu", (unsigned long)w.max_payload);
        else if (!strcmp(n, "ack_window")) sprintf(text, "%u", w.ack_window);
        else if (!strcmp(n, "heartbeat_seconds")) sprintf(text, "%u", w.heartbeat_seconds);
        else if (!strcmp(n, "idle_timeout_seconds")) sprintf(text, "%u", w.idle_timeout_seconds);
        else if (!strcmp(n, "max_records")) sprintf(text, "%u", w.max_records);
        else if (!strcmp(n, "horizon_past_seconds")) sprintf(text, "%lu", (unsigned long)w.horizon_past_seconds);
        else if (!strcmp(n, "horizon_future_seconds")) sprintf(text, "%lu", (unsigned long)w.horizon_future_seconds);
        else if (!strcmp(n, "ack_sequence")) sprintf(text, "%lu", (unsigned long)a.ack_sequence);
        else if (!strcmp(n, "rejected_records")) sprintf(text, "%lu", (unsigned long)a.rejected_records);
        else if (!strcmp(n, "code")) sprintf(text, "%u", e.code);
        else if (!strcmp(n, "code_name")) sprintf(text, "%s", hg_error_name(e.code));
        else if (!strcmp(n, "error_sequence")) sprintf(text, "%lu", (unsigned long)e.sequence);
        else if (!strcmp(n, "opaque")) sprintf(text, "%llu", (unsigned long long)opaque);
        else if (!strcmp(n, "reason") && frame->type == HG_BYE) sprintf(text, "%u", reason);
        else if (!strcmp(n, "reason")) {
            static uint8_t listed[2048];
            size_t length = unquote(val, listed, sizeof listed);
            CHECK(length == e.reason_length && memcmp(listed, e.reason, length) == 0, "%s: reason differs", v->name);
            continue;
        } else { FAIL("%s: unknown field %s", v->name, n); continue; }
        expect_value(v, n, val, text);
    }
    return HG_OK;
}

/* Encodes a client frame from its listed values; compares with the vector's bytes. */
static void check_encoded(const struct vector *v, const struct hg_frame *frame, const uint8_t *bytes, int group) {
    static uint8_t text[256];
    struct hg_hello hello;
    struct hg_telemetry batch;
    struct hg_event event;
    size_t size = 0;
    int i;
    uint64_t opaque = 0;
    uint8_t reason = 0;
    memset(&hello, 0, sizeof hello);
    memset(&batch, 0, sizeof batch);
    memset(&event, 0, sizeof event);
    memset(records, 0, sizeof records);
    memset(dtcs, 0, sizeof dtcs);
    for (i = v->first_field[group]; i < v->first_field[group + 1]; i++) {
        const char *n = fields[i].name, *val = fields[i].value;
        if (starts(n, "record[")) {
            long r = strtol(n + 7, NULL, 10);
            const char *f = strchr(n, ']') + 2;
            struct hg_record *rec = &records[r];
            if (!strcmp(f, "time_offset_ms")) rec->time_offset_ms = (uint32_t)unum(val);
            else if (!strcmp(f, "latitude")) rec->latitude = (int32_t)num(val);
            else if (!strcmp(f, "longitude")) rec->longitude = (int32_t)num(val);
            else if (!strcmp(f, "odometer")) rec->odometer = (uint32_t)unum(val);
            else if (!strcmp(f, "speed")) rec->speed = (uint16_t)unum(val);
            else if (!strcmp(f, "heading")) rec->heading = (uint16_t)unum(val);
            else if (!strcmp(f, "pack_voltage")) rec->pack_voltage = (uint16_t)unum(val);
            else if (!strcmp(f, "pack_current")) rec->pack_current = (int16_t)num(val);
            else if (!strcmp(f, "soc")) rec->soc = (uint8_t)unum(val);
            else if (!strcmp(f, "max_cell_temp")) rec->max_cell_temp = (int8_t)num(val);
            else if (!strcmp(f, "min_cell_temp")) rec->min_cell_temp = (int8_t)num(val);
            else if (!strcmp(f, "max_alarm_level")) rec->max_alarm_level = (uint8_t)unum(val);
            else if (!strcmp(f, "status")) rec->status = (uint16_t)unum(val);
            else if (!strcmp(f, "aux_battery_voltage")) rec->aux_battery_voltage = (uint16_t)unum(val);
            else if (!strcmp(f, "alarm_flags")) rec->alarm_flags = (uint32_t)unum(val);
            else if (!strcmp(f, "remaining_range")) rec->remaining_range = (uint16_t)unum(val);
            else if (strcmp(f, "timestamp_ms") != 0) FAIL("%s: unknown record field %s", v->name, f);
        } else if (starts(n, "dtc[")) {
            long d = strtol(n + 4, NULL, 10);
            const char *f = strchr(n, ']') + 2;
            if (!strcmp(f, "code")) dtcs[d].code = (uint32_t)unum(val);
            else if (!strcmp(f, "source")) dtcs[d].source = (uint8_t)unum(val);
            else if (!strcmp(f, "state")) dtcs[d].state = (uint8_t)unum(val);
        } else if (!strcmp(n, "client_kind")) hello.client_kind = (uint8_t)unum(val);
        else if (!strcmp(n, "protocol_version")) hello.protocol_version = (uint8_t)unum(val);
        else if (!strcmp(n, "protocol_minor")) hello.protocol_minor = (uint8_t)unum(val);
        else if (!strcmp(n, "client_time_ms")) hello.client_time_ms = num(val);
        else if (!strcmp(n, "sw_version")) {
            hello.sw_version_length = (uint8_t)unquote(val, text, sizeof text);
            hello.sw_version = (const char *)text;
        } else if (!strcmp(n, "base_time_ms")) batch.base_time_ms = num(val);
        else if (!strcmp(n, "time_ms")) event.time_ms = num(val);
        else if (!strcmp(n, "vin")) {
            uint8_t vin[32];
            unquote(val, vin, sizeof vin);
            memcpy(batch.vin, vin, HG_VIN_LENGTH);
            memcpy(event.vin, vin, HG_VIN_LENGTH);
        } else if (!strcmp(n, "record_size")) batch.record_size = (uint8_t)unum(val);
        else if (!strcmp(n, "record_count")) batch.record_count = (uint16_t)unum(val);
        else if (!strcmp(n, "max_alarm_level")) event.max_alarm_level = (uint8_t)unum(val);
        else if (!strcmp(n, "alarm_flags")) event.alarm_flags = (uint32_t)unum(val);
        else if (!strcmp(n, "dtc_count")) event.dtc_count = (uint16_t)unum(val);
        else if (!strcmp(n, "opaque")) opaque = unum(val);
        else if (!strcmp(n, "reason")) reason = (uint8_t)unum(val);
    }
    batch.records = records;
    event.dtcs = dtcs;
    switch (frame->type) {
    case HG_HELLO: size = hg_encode_hello(encoded, sizeof encoded, &hello); break;
    case HG_TELEMETRY: size = hg_encode_telemetry(encoded, sizeof encoded, frame->sequence, &batch); break;
    case HG_EVENT: size = hg_encode_event(encoded, sizeof encoded, frame->sequence, &event); break;
    case HG_PING: case HG_PONG: size = hg_encode_ping(encoded, sizeof encoded, frame->type, opaque); break;
    case HG_BYE: size = hg_encode_bye(encoded, sizeof encoded, reason); break;
    default: return;
    }
    if (v->unlisted_bytes) {
        /* The vector says its bytes hold what no listed value shows (reserved bytes set, a later
         * version's record bytes), which this encoder writes as zero: the size must agree, and the
         * bytes must differ (else the line would be wrong). */
        CHECK(size == frame->frame_length, "%s: encoded %zu bytes, vector has %zu", v->name, size, frame->frame_length);
        CHECK(memcmp(encoded, bytes, size) != 0, "%s: says unlisted_bytes but its values rebuild it", v->name);
        return;
    }
    encoded_frames++;
    CHECK(size == frame->frame_length && memcmp(encoded, bytes, size) == 0,
          "%s: frame %d encoded from its values differs from the vector's bytes", v->name, group);
}

static const char *error_of(uint16_t code) { return hg_error_name(code); }

static int client_only(uint8_t type) { return type == HG_HELLO || type == HG_TELEMETRY || type == HG_EVENT; }

static void run_vector(const struct vector *v) {
    size_t at = 0;
    int group = 0;
    uint16_t error = HG_OK;
    while (at < v->length) {
        struct hg_frame frame;
        enum hg_scan_result r = hg_scan(stream + at, v->length - at, v->max_payload, &frame, &error);
        if (r == HG_SCAN_NEED_MORE) { error = HG_ERR_TRUNCATED_FRAME; break; }
        if (r == HG_SCAN_ERROR) break;
        error = check_decoded(v, &frame, group < v->frame_count ? group : -1);
        if (error != HG_OK) break;
        if (v->error && group >= v->frame_count && client_only(frame.type)) {
            /* The failing frame's payload check is one only a server makes (HELLO/TELEMETRY/EVENT). */
            CHECK(starts(v->error, "BAD_") || strstr(v->error, "RECORD") || strstr(v->error, "INVALID")
                  || strstr(v->error, "EMPTY") || strstr(v->error, "TOO_MANY") || strstr(v->error, "UNSUPPORTED"),
                  "%s: %s is not a payload error", v->name, v->error);
            CHECK(strcmp(v->error, "BAD_MAGIC") && strcmp(v->error, "BAD_CHECKSUM") && strcmp(v->error, "FRAME_TOO_LARGE"),
                  "%s: the frame checks passed, expected %s", v->name, v->error);
            skipped_payload_checks++;
            return;
        }
        if (group < v->frame_count) {
            CHECK(v->first_field[group] < v->first_field[group + 1], "%s: empty frame group", v->name);
            if (!strcmp(fields[v->first_field[group]].value, type_name(frame.type)) == 0)
                FAIL("%s: frame %d is %s, listed %s", v->name, group, type_name(frame.type),
                     fields[v->first_field[group]].value);
            /* PING, PONG and BYE go both ways: a server's (sequence > 0) is decoded above only. */
            if (client_only(frame.type) || frame.sequence == 0) check_encoded(v, &frame, stream + at, group);
        }
        group++;
        at += frame.frame_length;
    }
    checks++;
    if (v->error) {
        if (error == HG_OK) FAIL("%s: decoded fine, expected %s", v->name, v->error);
        else if (strcmp(error_of(error), v->error) != 0) FAIL("%s: %s, expected %s", v->name, error_of(error), v->error);
    } else if (error != HG_OK) {
        FAIL("%s: %s on a valid vector", v->name, error_of(error));
    }
    CHECK(group == v->frame_count || v->error, "%s: %d frames decoded, %d listed", v->name, group, v->frame_count);
}

static int run_vector_file(const char *path) {
    char *text = read_file(path), *cursor = text, *line;
    struct vector v;
    int count = 0, in_block = 0;
    if (!text) { FAIL("cannot read %s", path); return 0; }
    memset(&v, 0, sizeof v);
    while ((line = next_line(&cursor)) != NULL) {
        if (!*line || *line == '#') continue;
        if (starts(line, "vector ")) {
            memset(&v, 0, sizeof v);
            v.name = line + 7;
            v.max_payload = HG_DEFAULT_MAX_PAYLOAD;
            field_count = 0;
            in_block = 1;
        } else if (!in_block) {
            FAIL("%s: line outside a block: %s", path, line);
        } else if (starts(line, "hex:")) {
            v.length = parse_hex(line + 4, stream, v.length, sizeof stream);
        } else if (starts(line, "max_payload:")) {
            v.max_payload = (uint32_t)unum(line + 12);
        } else if (starts(line, "error:")) {
            v.error = line + 7;
        } else if (starts(line, "unlisted_bytes:")) {
            v.unlisted_bytes = line + 15;
        } else if (!strcmp(line, "frame")) {
            if (v.frame_count < MAX_FRAMES) v.first_field[v.frame_count++] = field_count;
        } else if (!strcmp(line, "end")) {
            v.first_field[v.frame_count] = field_count;
            run_vector(&v);
            count++;
            in_block = 0;
        } else if (strstr(line, " = ")) {
            char *eq = strstr(line, " = ");
            *eq = 0;
            if (field_count < MAX_FIELDS) { fields[field_count].name = line; fields[field_count].value = eq + 3; field_count++; }
        } else if (!starts(line, "note:") && !starts(line, "max_records:") && !starts(line, "error_field:")
                   && !starts(line, "error_record:")) {
            FAIL("%s: unknown line %s", path, line);
        }
    }
    free(text);
    return count;
}

/* ---- Traces ---- */

static const char *value_of(const char *fields_text, const char *name) {
    static char value[64];
    const char *p = fields_text;
    size_t n = strlen(name);
    while ((p = strstr(p, name)) != NULL) {
        if ((p == fields_text || p[-1] == ' ') && p[n] == '=') {
            size_t k = 0;
            p += n + 1;
            while (*p && *p != ' ' && k < sizeof value - 1) value[k++] = *p++;
            value[k] = 0;
            return value;
        }
        p += n;
    }
    return NULL;
}

struct trace_state {
    const char *name;
    struct hg_queue queue;
    struct hg_queue_entry storage[2048];
    uint16_t window;
    uint32_t max_payload;
    uint32_t bad_sequence;      /* header sequence of a data frame the queue would not have sent */
    int bad_data_frame;
    uint16_t frame_error;       /* a frame check the C scan failed on */
    int partial;                /* the last send ended inside a frame */
    int error_seen;
};

static void trace_send(struct trace_state *t, const uint8_t *bytes, size_t length) {
    size_t at = 0;
    while (at < length) {
        struct hg_frame frame;
        uint16_t error = HG_OK;
        enum hg_scan_result r = hg_scan(bytes + at, length - at, t->max_payload, &frame, &error);
        if (r == HG_SCAN_NEED_MORE) { t->partial = 1; return; }
        if (r == HG_SCAN_ERROR) { t->frame_error = error; return; }
        if (frame.type == HG_TELEMETRY || frame.type == HG_EVENT) {
            uint32_t handle = 0, sequence = 0;
            hg_queue_push(&t->queue, frame.sequence);
            if (!hg_queue_next(&t->queue, &handle, &sequence) || sequence != frame.sequence) {
                if (!t->bad_data_frame) t->bad_sequence = frame.sequence;
                t->bad_data_frame = 1;
            }
        }
        at += frame.frame_length;
    }
}

static int run_trace_file(const char *path) {
    char *text = read_file(path), *cursor = text, *line;
    static uint8_t bytes[1 << 16];
    size_t length = 0;
    static struct trace_state t;
    int count = 0;
    if (!text) { FAIL("cannot read %s", path); return 0; }
    while ((line = next_line(&cursor)) != NULL) {
        if (!*line || *line == '#') continue;
        if (starts(line, "trace ")) {
            memset(&t, 0, sizeof t);
            t.name = line + 6;
            t.window = 64;
            t.max_payload = HG_DEFAULT_MAX_PAYLOAD;
            hg_queue_init(&t.queue, t.storage, 2048);
        } else if (starts(line, "limits:")) {
            const char *w = value_of(line + 8, "ack_window"), *m;
            if (w) t.window = (uint16_t)unum(w);
            m = value_of(line + 8, "max_payload");
            if (m) t.max_payload = (uint32_t)unum(m);
        } else if (starts(line, "client:")) {
            length = parse_hex(line + 7, bytes, length, sizeof bytes);
        } else if (!strcmp(line, "send")) {
            trace_send(&t, bytes, length);
            length = 0;
        } else if (starts(line, "server: WELCOME")) {
            const char *w = value_of(line + 16, "ack_window");
            hg_queue_connected(&t.queue, w ? (uint16_t)unum(w) : t.window);
        } else if (starts(line, "server: ACK")) {
            const char *n = value_of(line + 12, "ack_sequence");
            uint32_t before = t.queue.count;
            int released = n ? hg_queue_ack(&t.queue, (uint32_t)unum(n)) : -1;
            CHECK(released >= 0, "trace %s: the resend queue refuses %s", t.name, line);
            CHECK(!t.bad_data_frame, "trace %s: ACK after a frame the queue would not have sent", t.name);
            CHECK(t.queue.count == before - (uint32_t)(released < 0 ? 0 : released), "trace %s: queue count", t.name);
        } else if (starts(line, "server: ERROR")) {
            const char *code = value_of(line + 14, "code"), *seq;
            char name[40];
            strncpy(name, code ? code : "", sizeof name - 1);
            name[sizeof name - 1] = 0;
            seq = value_of(line + 14, "error_sequence");
            t.error_seen = 1;
            if (t.frame_error) {
                CHECK(!strcmp(name, hg_error_name(t.frame_error)), "trace %s: C frame checks say %s, server %s",
                      t.name, hg_error_name(t.frame_error), name);
            } else {
                CHECK(strcmp(name, "BAD_MAGIC") && strcmp(name, "BAD_CHECKSUM")
                      && strcmp(name, "UNKNOWN_FRAME_TYPE") && strcmp(name, "FRAME_TOO_LARGE"),
                      "trace %s: server says %s, the C frame checks passed", t.name, name);
            }
            if (!strcmp(name, "SEQUENCE_GAP") || !strcmp(name, "WINDOW_EXCEEDED")) {
                CHECK(t.bad_data_frame && seq && unum(seq) == t.bad_sequence,
                      "trace %s: %s for a frame the resend queue would have sent", t.name, name);
            }
            CHECK(hg_error_action((uint16_t)0x0500) == HG_ACTION_RETRY, "unknown code action");
        } else if (!strcmp(line, "closed")) {
            uint16_t held = hg_queue_disconnected(&t.queue);
            CHECK(held == t.queue.count, "trace %s: queue holds %u after close", t.name, held);
            if (t.bad_data_frame) CHECK(t.error_seen, "trace %s: a bad data frame but no ERROR", t.name);
            if (t.partial && !t.error_seen) checks++;  /* truncated stream: closed without ERROR */
        } else if (!strcmp(line, "end")) {
            count++;
        } else if (!starts(line, "note:") && !starts(line, "server:") && !starts(line, "commit:") && !starts(line, "peer:")
                   && strcmp(line, "shutdown") && strcmp(line, "idle_timeout") && strcmp(line, "client_eof")
                   && strcmp(line, "handshake_timeout") && strcmp(line, "revoke")
                   && strcmp(line, "storage: refuses") && !starts(line, "clock:")) {
            FAIL("%s: unknown line %s", path, line);
        }
    }
    free(text);
    return count;
}

/* ---- Unit checks: CRC, byte order, the queue ---- */

static void unit_checks(void) {
    static const uint8_t check[] = "123456789";
    uint8_t out[64];
    struct hg_queue q;
    struct hg_queue_entry e[4];
    uint32_t handle, sequence;
    size_t n;
    CHECK(hg_crc32c(check, 9) == 0xE3069283u, "CRC-32C check value");
    {
        /* ERROR reasons: strict UTF-8, also at the very end of the payload. */
        static const uint8_t cut[] = { 0x03, 0x03, 0, 0, 1, 0, 0, 0, 'o', 'k', 0xC3 };
        static const uint8_t whole[] = { 0x03, 0x03, 0, 0, 1, 0, 0, 0, 'o', 'k', 0xC3, 0xA9 };
        static const uint8_t overlong[] = { 0x03, 0x03, 0, 0, 1, 0, 0, 0, 0xC0, 0xAF };
        static const uint8_t surrogate[] = { 0x03, 0x03, 0, 0, 1, 0, 0, 0, 0xED, 0xA0, 0x80 };
        struct hg_frame f;
        struct hg_error_frame e;
        f.type = HG_ERROR;
        f.sequence = 1;
        f.payload = cut; f.payload_length = sizeof cut;
        CHECK(hg_decode_error(&f, &e) == HG_ERR_INVALID_PAYLOAD, "a reason ending inside a UTF-8 sequence");
        f.payload = whole; f.payload_length = sizeof whole;
        CHECK(hg_decode_error(&f, &e) == HG_OK && e.reason_length == 4 && e.code == 0x0303, "a whole UTF-8 reason");
        f.payload = overlong; f.payload_length = sizeof overlong;
        CHECK(hg_decode_error(&f, &e) == HG_ERR_INVALID_PAYLOAD, "an overlong UTF-8 form");
        f.payload = surrogate; f.payload_length = sizeof surrogate;
        CHECK(hg_decode_error(&f, &e) == HG_ERR_INVALID_PAYLOAD, "a UTF-8 surrogate");
    }
    /* The wire bytes of a PING do not depend on this host's byte order. */
    n = hg_encode_ping(out, sizeof out, HG_PING, 0x0102030405060708ull);
    CHECK(n == 24 && out[0] == 0x48 && out[1] == 0x47 && out[8] == 8 && out[12] == 0x08 && out[19] == 0x01,
          "PING bytes are little-endian");
    CHECK(hg_encode_ping(out, 23, HG_PING, 1) == 0, "encode refuses a short buffer");
    hg_queue_init(&q, e, 4);
    CHECK(hg_queue_push(&q, 10) == 0 && hg_queue_push(&q, 11) == 0 && hg_queue_push(&q, 12) == 0, "push");
    CHECK(hg_queue_next(&q, &handle, &sequence) == 0, "nothing is sent before WELCOME");
    hg_queue_connected(&q, 2);
    CHECK(hg_queue_next(&q, &handle, &sequence) == 1 && handle == 10 && sequence == 1, "first frame is 1");
    CHECK(hg_queue_next(&q, &handle, &sequence) == 1 && handle == 11 && sequence == 2, "second frame is 2");
    CHECK(hg_queue_next(&q, &handle, &sequence) == 0, "window of 2 is full");
    CHECK(hg_queue_ack(&q, 3) == -1, "an ACK for a frame not sent is refused");
    CHECK(hg_queue_ack(&q, 1) == 1, "ACK 1 releases one");
    CHECK(hg_queue_ack(&q, 1) == 0 && q.count == 2, "a repeated ACK releases nothing and is not refused (4.5)");
    CHECK(hg_queue_ack(&q, 0) == -1, "an ACK going backwards is refused");
    CHECK(hg_queue_next(&q, &handle, &sequence) == 1 && handle == 12 && sequence == 3, "window opened");
    CHECK(hg_queue_disconnected(&q) == 2, "two frames kept after a disconnect");
    hg_queue_connected(&q, 64);
    CHECK(hg_queue_next(&q, &handle, &sequence) == 1 && handle == 11 && sequence == 1, "resent first, renumbered");
    CHECK(hg_queue_push(&q, 13) == 0 && hg_queue_push(&q, 14) == 0 && hg_queue_push(&q, 15) == -1, "full at 4");
    CHECK(hg_error_action(HG_ERR_VIN_NOT_ALLOWED) == HG_ACTION_GIVE_UP && hg_error_action(HG_ERR_BAD_MAGIC) == HG_ACTION_FIX
          && hg_error_action(0x7777) == HG_ACTION_RETRY && hg_error_action(HG_ERR_SEQUENCE_GAP) == HG_ACTION_RETRY,
          "action classes");
}

int main(int argc, char **argv) {
    static const char *files[] = { "valid.txt", "valid-large.txt", "invalid.txt", "handwritten.txt" };
    char path[4096];
    int vectors = 0, traces, i;
    const unsigned probe = 1;
    if (argc != 2) { fprintf(stderr, "usage: %s VECTOR_DIRECTORY\n", argv[0]); return 2; }
    unit_checks();
    for (i = 0; i < (int)(sizeof files / sizeof files[0]); i++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], files[i]);
        vectors += run_vector_file(path);
    }
    snprintf(path, sizeof path, "%s/sessions.txt", argv[1]);
    traces = run_trace_file(path);
    CHECK(vectors >= 100, "only %d vectors read", vectors);
    CHECK(traces >= 40, "only %d traces read", traces);
    printf("horgos C codec (%s-endian host): %d vectors (%d frames decoded, %d encoded byte for byte, "
           "%d server-only payload checks not applicable), %d traces, %d checks, %d failures\n",
           *(const unsigned char *)&probe == 1 ? "little" : "big", vectors, decoded_frames, encoded_frames,
           skipped_payload_checks, traces, checks, failures);
    return failures == 0 ? 0 : 1;
}
