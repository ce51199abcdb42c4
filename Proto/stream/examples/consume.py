#!/usr/bin/env python3
"""A consumer of the Horgos stream written from Proto/STREAM.md alone.

It reads every message of a region from NATS JetStream (nats-py), decodes each body as
horgos.stream.v1.Record (Python protobuf; the module is generated from the .proto with grpcio-tools'
protoc at start), turns every sample into the row `horgosctl export` prints (STREAM.md section 3.1),
de-duplicates by (VIN, timestamp_ms) (section 5), and either prints the rows as JSON lines or compares
them with an export file field for field.

    pip install nats-py protobuf grpcio-tools
    python3 consume.py --servers nats://127.0.0.1:4222 --subject 'horgos.AE.>' > rows.jsonl
    horgosctl export --region AE --from 1d --to 0s --format jsonl > export.jsonl
    python3 consume.py --servers nats://127.0.0.1:4222 --subject 'horgos.AE.>' --compare export.jsonl

With --compare it prints one JSON summary line and exits 0 only when every row matches.
"""
import argparse
import asyncio
import importlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.join(HERE, "..", "horgos_stream_v1.proto")

# The export columns (STREAM.md section 3.1) and how many decimals each prints; None: an integer.
COLUMNS = [
    ("timestamp_ms", None), ("latitude", 7), ("longitude", 7), ("odometer_km", 1), ("speed_kmh", 1),
    ("heading_deg", 2), ("pack_voltage_v", 1), ("pack_current_a", 1), ("soc_percent", None),
    ("max_cell_temp_c", None), ("min_cell_temp_c", None), ("max_alarm_level", None), ("status", None),
    ("aux_battery_v", 2), ("alarm_flags", None), ("remaining_range_km", None),
]


def load_schema(proto):
    """The generated module of the .proto (protoc from grpcio-tools, into a temporary directory)."""
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="horgos-stream-pb-")
    directory, name = os.path.split(os.path.abspath(proto))
    status = protoc.main(["protoc", f"-I{directory}", f"--python_out={out}", name])
    if status != 0:
        sys.exit(f"protoc failed on {proto}")
    sys.path.insert(0, out)
    return importlib.import_module(name[:-len(".proto")] + "_pb2")


async def read_messages(servers, stream, subject):
    """Every message of `subject` in `stream`, through an ephemeral pull consumer."""
    import nats
    from nats.errors import TimeoutError as NATSTimeout
    connection = await nats.connect(servers=servers.split(","))
    jetstream = connection.jetstream()
    subscription = await jetstream.pull_subscribe(subject, stream=stream)
    messages = []
    while True:
        try:
            batch = await subscription.fetch(500, timeout=2)
        except NATSTimeout:
            # Done only when the stream holds nothing more for this consumer (a slow server is not the end).
            info = await subscription.consumer_info()
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            continue
        for message in batch:
            messages.append((dict(message.headers or {}), message.data))
            await message.ack()
    await connection.close()
    return messages


def value(sample, field):
    """An optional field's value, or None when the unit reported "not available"."""
    return getattr(sample, field) if sample.HasField(field) else None


def export_row(vin, sample):
    """The `horgosctl export` row of a sample (STREAM.md section 3.1), values as numbers."""
    current = value(sample, "powertrain_traction_battery_current_current")
    range_m = value(sample, "powertrain_traction_battery_range")
    return {
        "vin": vin,
        "timestamp_ms": sample.timestamp_ms,
        "latitude": value(sample, "current_location_latitude"),
        "longitude": value(sample, "current_location_longitude"),
        "odometer_km": value(sample, "traveled_distance"),
        "speed_kmh": value(sample, "speed"),
        "heading_deg": value(sample, "current_location_heading"),
        "pack_voltage_v": value(sample, "powertrain_traction_battery_current_voltage"),
        # VSS counts current into the battery positive; Horgos's export counts discharge positive.
        "pack_current_a": None if current is None else -current,
        "soc_percent": value(sample, "powertrain_traction_battery_state_of_charge_current"),
        "max_cell_temp_c": value(sample, "powertrain_traction_battery_temperature_max"),
        "min_cell_temp_c": value(sample, "powertrain_traction_battery_temperature_min"),
        "max_alarm_level": value(sample, "gbt32960_max_alarm_level"),
        "status": sample.status,
        "aux_battery_v": value(sample, "low_voltage_battery_current_voltage"),
        "alarm_flags": sample.gbt32960_general_alarm_flags,
        "remaining_range_km": None if range_m is None else range_m // 1000,
    }


def rows_of(schema, messages):
    """Rows by (VIN, timestamp_ms), de-duplicated; with per-kind counts and message ids seen."""
    rows, kinds, ids = {}, {"telemetry": 0, "gbt32960": 0, "other": 0}, []
    for headers, body in messages:
        ids.append(headers.get("Nats-Msg-Id"))
        record = schema.Record()
        record.ParseFromString(body)
        vin = record.vehicle_identification_vin
        if record.kind == schema.ENTRY_KIND_TELEMETRY and record.HasField("telemetry"):
            samples = list(record.telemetry.samples)
            kinds["telemetry"] += len(samples)
        elif record.kind == schema.ENTRY_KIND_GBT32960 and record.HasField("gbt32960"):
            samples = [record.gbt32960.sample]
            kinds["gbt32960"] += 1
        else:
            kinds["other"] += 1
            continue
        for sample in samples:
            rows[(vin, sample.timestamp_ms)] = export_row(vin, sample)
    return rows, kinds, ids


def text(number, decimals):
    """A value as the export prints it (None stays None)."""
    if number is None:
        return None
    if decimals is None:
        return str(int(round(number)))
    return f"{number:.{decimals}f}"


def compare(rows, export_path):
    expected = {}
    with open(export_path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                expected[(row["vin"], row["timestamp_ms"])] = row
    missing = sorted(set(expected) - set(rows))
    extra = sorted(set(rows) - set(expected))
    mismatches = []
    for key in sorted(set(expected) & set(rows)):
        for column, decimals in COLUMNS:
            want = text(expected[key][column], decimals)
            got = text(rows[key][column], decimals)
            if want != got:
                mismatches.append({"vin": key[0], "timestamp_ms": key[1], "column": column, "export": want,
                                   "stream": got})
    return {"compared": len(set(expected) & set(rows)), "missing": len(missing), "extra": len(extra),
            "mismatches": len(mismatches), "examples": mismatches[:5] + [{"missing": list(k)} for k in missing[:3]]
            + [{"extra": list(k)} for k in extra[:3]]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", required=True, help="NATS URLs, comma separated")
    parser.add_argument("--stream", default="HORGOS")
    parser.add_argument("--subject", default="horgos.>")
    parser.add_argument("--proto", default=DEFAULT_PROTO)
    parser.add_argument("--compare", help="an export file (horgosctl export --format jsonl) to compare with")
    args = parser.parse_args()
    schema = load_schema(args.proto)
    messages = asyncio.run(read_messages(args.servers, args.stream, args.subject))
    rows, kinds, ids = rows_of(schema, messages)
    if args.compare:
        summary = compare(rows, args.compare)
        summary.update(messages=len(messages), duplicate_message_ids=len(ids) - len(set(ids)),
                       native_samples=kinds["telemetry"], gbt32960_samples=kinds["gbt32960"])
        print(json.dumps(summary))
        ok = summary["missing"] == 0 and summary["extra"] == 0 and summary["mismatches"] == 0
        sys.exit(0 if ok else 1)
    for key in sorted(rows):
        print(json.dumps(rows[key]))


if __name__ == "__main__":
    main()
