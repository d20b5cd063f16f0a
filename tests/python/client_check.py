"""Quiver from Python with no Quiver code: grpcio stubs generated from proto/ for online
reads, and plain pyarrow.flight for a training set.

Prints one JSON document on stdout with what the server answered; the Rust test that runs
this script compares it with the answers of its own (tonic) client. Exits non-zero, with
the reason on stderr, when a call fails or an answer has the wrong shape.
"""

import argparse
import json
import sys

import grpc
import pyarrow as pa
import pyarrow.flight as flight

from quiver.v1 import online_pb2, online_pb2_grpc, types_pb2


def value_to_json(v):
    kind = v.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "list_value":
        return [value_to_json(x) for x in v.list_value.values]
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def online(addr, refs, drivers, at_ns):
    with grpc.insecure_channel(addr) as channel:
        stub = online_pb2_grpc.OnlineServiceStub(channel)
        request = online_pb2.GetOnlineFeaturesRequest(
            features=types_pb2.FeatureList(refs=refs),
            entities={"driver_id": types_pb2.RepeatedValue(values=[types_pb2.Value(int64_value=d) for d in drivers])},
            at_ns=at_ns,
        )
        response = stub.GetOnlineFeatures(request, timeout=30)
        # An unknown feature is refused with a status naming it.
        try:
            stub.GetOnlineFeatures(
                online_pb2.GetOnlineFeaturesRequest(
                    features=types_pb2.FeatureList(refs=["driver_stats:no_such_feature"]),
                    entities={"driver_id": types_pb2.RepeatedValue(values=[types_pb2.Value(int64_value=1)])},
                ),
                timeout=30,
            )
            raise SystemExit("an unknown feature was not refused")
        except grpc.RpcError as e:
            refused = {"code": e.code().name, "message": e.details()}
    status_name = online_pb2.FeatureStatus.Name
    return {
        "feature_names": list(response.feature_names),
        "registry_version": response.registry_version,
        "results": [
            {
                "values": [value_to_json(v) for v in column.values],
                "statuses": [status_name(s) for s in column.statuses],
                "event_timestamps_ns": list(column.event_timestamps_ns),
            }
            for column in response.results
        ],
        "unknown_feature": refused,
    }


def training_set(addr, refs, spine_rows):
    client = flight.connect(f"grpc://{addr}")
    spine = pa.table(
        {
            "driver_id": pa.array([r[0] for r in spine_rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in spine_rows], pa.timestamp("ns", tz="UTC")),
            "label": pa.array([f"row{i}" for i in range(len(spine_rows))]),
        }
    )
    descriptor = flight.FlightDescriptor.for_command(json.dumps({"features": refs}))
    writer, reader = client.do_put(descriptor, spine.schema)
    writer.write_table(spine)
    writer.done_writing()
    meta = json.loads(reader.read().to_pybytes())
    writer.close()
    table = client.do_get(flight.Ticket(meta["ticket"])).read_all()
    info = client.get_flight_info(flight.FlightDescriptor.for_path("training_sets", meta["ticket"]))
    return {
        "rows": meta["rows"],
        "total_records": info.total_records,
        "columns": table.column_names,
        "table": {name: table.column(name).to_pylist() for name in table.column_names if name != "event_timestamp"},
        "manifest_registry_version": meta["manifest"]["registry_version"],
    }


def refused_upload(addr, spine_rows):
    """The README's DoPut snippet with a command the server refuses (an unknown feature
    service): reader.read() gives nothing and writer.close() raises the server's error (pyarrow
    maps the gRPC code to its exception: NOT_FOUND is an ArrowKeyError)."""
    client = flight.connect(f"grpc://{addr}")
    spine = pa.table(
        {
            "driver_id": pa.array([r[0] for r in spine_rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in spine_rows], pa.timestamp("ns", tz="UTC")),
        }
    )
    descriptor = flight.FlightDescriptor.for_command(json.dumps({"feature_service": "no_such_service"}))
    writer, reader = client.do_put(descriptor, spine.schema)
    error = None
    reply = None
    try:
        writer.write_table(spine)
        writer.done_writing()
        reply = reader.read()
        writer.close()
    except (flight.FlightError, pa.ArrowException) as e:
        error = {"type": type(e).__name__, "message": str(e)}
    return {"reply_is_none": reply is None, "error": error}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--at-ns", type=int, required=True)
    parser.add_argument("--refs", required=True, help="comma separated view:feature")
    parser.add_argument("--drivers", required=True, help="comma separated driver ids")
    parser.add_argument("--spine", required=True, help="JSON list of [driver_id, event time ns]")
    args = parser.parse_args()
    refs = args.refs.split(",")
    drivers = [int(d) for d in args.drivers.split(",")]
    out = {
        "online": online(args.addr, refs, drivers, args.at_ns),
        "training_set": training_set(args.addr, refs, json.loads(args.spine)),
        "refused_upload": refused_upload(args.addr, json.loads(args.spine)),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
