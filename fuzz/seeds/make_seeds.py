#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into OUT/<target>/ from the test
fixtures (tests/fixtures/) and a few hand-written inputs. Standard library
only: OTLP protobuf seeds are encoded here from the OTLP JSON fixtures.

    fuzz/seeds/make_seeds.py OUT_DIR
"""
import glob
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1]


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- a minimal protobuf writer for the OTLP trace messages -------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):
    return tag(field, 2) + varint(len(payload)) + payload


def text(field, s):
    return ld(field, s.encode()) if s else b""


def int_field(field, n):
    return tag(field, 0) + varint(int(n)) if int(n) else b""


def fixed64(field, n):
    return tag(field, 1) + struct.pack("<Q", int(n)) if int(n) else b""


def any_value(v):
    if "stringValue" in v:
        return ld(1, v["stringValue"].encode())
    if "boolValue" in v:
        return tag(2, 0) + varint(1 if v["boolValue"] else 0)
    if "intValue" in v:
        return tag(3, 0) + varint(int(v["intValue"]))
    if "doubleValue" in v:
        return tag(4, 1) + struct.pack("<d", float(v["doubleValue"]))
    if "arrayValue" in v:
        return ld(5, b"".join(ld(1, any_value(x)) for x in v["arrayValue"].get("values", [])))
    if "kvlistValue" in v:
        return ld(6, b"".join(ld(1, key_value(x)) for x in v["kvlistValue"].get("values", [])))
    return b""


def key_value(kv):
    return text(1, kv["key"]) + ld(2, any_value(kv.get("value", {})))


def attrs(field, items):
    return b"".join(ld(field, key_value(kv)) for kv in items or [])


def span(s):
    out = ld(1, bytes.fromhex(s.get("traceId", ""))) + ld(2, bytes.fromhex(s.get("spanId", "")))
    if s.get("parentSpanId"):
        out += ld(4, bytes.fromhex(s["parentSpanId"]))
    out += text(5, s.get("name", "")) + int_field(6, s.get("kind", 0))
    out += fixed64(7, s.get("startTimeUnixNano", 0)) + fixed64(8, s.get("endTimeUnixNano", 0))
    out += attrs(9, s.get("attributes"))
    st = s.get("status")
    if st:
        out += ld(15, text(2, st.get("message", "")) + int_field(3, st.get("code", 0)))
    return out


def request(doc):
    out = b""
    for rs in doc.get("resourceSpans", []):
        body = b""
        if "resource" in rs:
            body += ld(1, attrs(1, rs["resource"].get("attributes")))
        for ss in rs.get("scopeSpans", []):
            scope = ss.get("scope", {})
            sb = ld(1, text(1, scope.get("name", "")) + text(2, scope.get("version", "")))
            sb += b"".join(ld(2, span(s)) for s in ss.get("spans", []))
            body += ld(2, sb)
        out += ld(1, body)
    return out


def walk_attrs(doc):
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                yield {kv["key"]: kv.get("value", {}).get("stringValue") for kv in s.get("attributes", [])}


fixtures = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/golden/*.otlp.json")))
fixtures.append(os.path.join(ROOT, "tests/fixtures/n_plus_one_http.otlp.json"))
sqls, urls = set(), set()
for path in fixtures:
    with open(path, "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    put("otlp_json", raw)
    put("otlp_protobuf", request(doc))
    for a in walk_attrs(doc):
        for k in ("db.statement", "db.query.text"):
            if a.get(k):
                sqls.add(a[k])
        for k in ("http.url", "url.full"):
            if a.get(k):
                urls.add((a.get("http.method") or a.get("http.request.method") or "GET", a[k]))
put("otlp_protobuf", b"")

for s in sorted(sqls):
    put("sql_normalize", s)
for s in [
    "SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'o''brien' -- c\n",
    "INSERT INTO t (a, b) VALUES ($1, :name), (?, @p1); /* x */",
    "SELECT $tag$ body $tag$, E'\\n', x'ff', 1.5e-3, -7 FROM \"Q\"\"t\"",
    "UPDATE `t` SET v = v + 1 WHERE k = N'ü' LIMIT 10",
]:
    put("sql_normalize", s)

for method, url in sorted(urls):
    put("http_normalize", f"{method}\n{url}")
for s in [
    "GET\nhttps://user:pw@API.Example.com:8443/v1/orders/12345/items/9f1c2d3e-aaaa-bbbb-cccc-0123456789ab?x=1&y=2#f",
    "post\n/users/42/avatar?size=big",
    "\nuser@host/path/00000000",
]:
    put("http_normalize", s)

TRACE = "5b8efff798038103d269b633813fc60c"
put("zipkin_json", json.dumps([
    {"traceId": TRACE, "id": "d269b633813fc60c", "name": "get /orders", "kind": "SERVER",
     "timestamp": 1718010800000000, "duration": 74000,
     "localEndpoint": {"serviceName": "orders", "ipv4": "10.0.0.1", "port": 8080},
     "tags": {"http.method": "GET", "http.path": "/orders"}},
    {"traceId": TRACE, "parentId": "d269b633813fc60c", "id": "e269b633813fc60d", "name": "select",
     "kind": "CLIENT", "timestamp": 1718010800001000, "duration": 900,
     "localEndpoint": {"serviceName": "orders"}, "remoteEndpoint": {"serviceName": "postgres"},
     "tags": {"sql.query": "SELECT * FROM items WHERE order_id = 7", "error": "boom"},
     "annotations": [{"timestamp": 1718010800001100, "value": "cs"}], "shared": False, "debug": True},
]))
put("zipkin_json", "[]")

for path in [os.path.join(ROOT, "examples/perf-sentinel.toml")]:
    with open(path, "rb") as f:
        put("config_toml", f.read())
for s in [
    "[daemon]\nlisten_port_http = 4318\nenvironment = \"production\"\n",
    "[detectors.n_plus_one_sql]\nmin_occurrences = 3\n[environments.prod.detectors.n_plus_one_sql]\nenabled = false\n",
    "[detectors.select_star_without_limit]\nseverity = \"critical\"\n[detectors.downstream_error_spike]\nenabled = true\n",
    "[daemon.ack]\nstorage_path = \"/tmp/a.jsonl\"\n[thresholds]\nmax_critical = 0\n",
]:
    put("config_toml", s)

SIG = "n_plus_one_sql:orders:GET /orders:" + "0123456789abcdef" * 2
for s in [
    '{"action":"ack","signature":"%s","by":"bob","reason":"known","at":"2026-03-01T12:00:00Z","expires_at":null}\n' % SIG,
    '{"action":"ack","signature":"%s","by":"bob","reason":"r","at":"2026-03-01T11:00:00+02:00","expires_at":"2027-01-01T00:00:00Z"}\n'
    '{"action":"unack","signature":"%s","by":"eve","at":"2026-03-01T12:00:00Z"}\nnot json\n\n{"action":"ack"' % (SIG, SIG),
]:
    put("ack_replay", s)

for s in [
    "severity = \"warning\"\n",
    "window_secs = 30\nmin_calls = 5\nerror_rate_threshold = 0.5\n",
    "tables = [\"orders\", \"items\"]\nrequest_path_only = false\nseverity = \"info\"\n",
    "enabled = true\n[nested]\nx = [1, 2.5, \"s\", 1979-05-27T07:32:00Z]\n",
]:
    put("plugin_config", s)
