"""Batching is lossless: every number and string reaches the model exactly as
the client wrote it, and every client gets its own rows of the model's answer
exactly as the model wrote them, in JSON and with the binary tensor data
extension (Inference-Header-Content-Length, binary_data_size).

The model is tests/integration/echo_model.py, a recording echo server: it
answers each call with the caller's tensors copied byte for byte (V1: the
instances array's text; V2: one output per input, in the encoding asked) and
keeps every call's raw bytes for GET /_calls. The gateway runs with
upstream.max_concurrency 1 and batch max_size 64 / max_delay_us 20000.

Every case merges for real and checks that it did: a GET /_block on the
passthrough route holds the gateway's only concurrency slot at the model while
the case's requests are sent concurrently (real HTTP clients on threads); once
the gateway's /autoscale queue_depth shows them all queued (or already
answered, for requests the gateway rejects), the block is released and the
batcher takes them together. Each case then asserts that the model saw fewer
calls than there were requests and that one call carried the values of at
least two clients. No timing thresholds: the only waits poll observable state.

Comparisons: V2 data is compared token by token on the raw text (numbers and
strings exactly as written, brackets/commas/whitespace between tokens ignored,
so nested and flat data compare equal). V1 rows are compared after removing
whitespace outside strings (the separators between rows are the gateway's to
choose; a row's tokens are not). Where the gateway must convert an encoding
(a JSON client batched with binary ones, or the model answering in the other
encoding), FP32 values are compared as float32 bit patterns, FP64 as float64
bit patterns and integers as integers, since the text may legitimately change.
"""

import re
import struct

import echo_model as em
import harness as h

suite = h.Suite("lossless")

V1 = "/v1/models/echo:predict"
V2 = "/v2/models/echo/infer"

BATCH = {"max_size": 64, "max_delay_us": 20000}
ROUTES = [
    {"match": "/v1/models/{model}:predict", "protocol": "kserve-v1", "batch": dict(BATCH)},
    {"match": "/v2/models/{model}/infer", "protocol": "oip-v2", "batch": dict(BATCH)},
    # Only for GET /_block, which holds the gateway's one slot at the model.
    {"match": "/*", "protocol": "passthrough"},
]


def start(env, **model_cfg):
    cfg = {"delay_ms": 200}
    cfg.update(model_cfg)
    model = env.echo_model(**cfg)
    gw = env.gateway(model.url, {"upstream": {"max_concurrency": 1}, "routes": ROUTES})
    model.reset()
    return model, gw


def send_together(model, gw, reqs, ordered=False):
    """Sends reqs [(path, body, headers)] so that the gateway batches them:
    GET /_block holds the only slot, the requests are sent on threads, and the
    block is released once every request is queued in the gateway or already
    answered (rejected). With `ordered`, request i+1 is sent only once request i
    is queued, so the first member of the batch is known. Returns the
    responses in order."""
    blocker = h.Background(lambda: gw.data("GET", "/_block", timeout=40))
    bgs = []
    try:
        h.check(h.wait_for(lambda: model.state()["blocked"] == 1),
                "GET /_block never reached the model through the gateway")

        def settled():
            return (gw.queue_depth() or 0) + sum(b.done() for b in bgs)

        for path, body, headers in reqs:
            hd = {"Content-Type": "application/json"}
            hd.update(headers or {})
            bgs.append(h.Background(lambda p=path, b=body, hd=hd:
                                    h.request(gw.port, "POST", p, body=b, headers=hd)))
            if ordered:
                n = len(bgs)
                h.check(h.wait_for(lambda: settled() >= n),
                        "request %d never queued in the gateway" % n)
        h.check(h.wait_for(lambda: settled() >= len(reqs)),
                "the gateway never held all %d requests queued (queue_depth %r, answered %d)"
                % (len(reqs), gw.queue_depth(), sum(b.done() for b in bgs)))
    finally:
        model.release()
    h.check_eq(blocker.result().status, 200, "the GET /_block that held the slot")
    return [b.result() for b in bgs]


def inference_calls(model, path):
    return [c for c in model.calls() if c["path"] == path]


def check_merged(calls, nreq, holds, what):
    """Fewer calls than requests, and one call carries >= 2 clients' values:
    holds[i](call) says whether the call carries client i's values."""
    h.check(0 < len(calls) < nreq,
            "%s: %d requests reached the model as %d calls: nothing was merged"
            % (what, nreq, len(calls)))
    best = max(sum(1 for f in holds if f(c)) for c in calls)
    h.check(best >= 2, "%s: no call to the model carried the values of two clients as "
            "written (at most %d per call in %d calls): %s"
            % (what, best, len(calls), _show(calls)))
    return best


def _show(calls):
    """A short view of recorded calls (raw or decoded) for failure messages."""
    out = []
    for c in calls:
        if isinstance(c, dict) and "body" in c:
            out.append(c["body"][:300])
        elif isinstance(c, dict):
            out.append({k: v.get("text") if v.get("text") is not None else v.get("raw", b"")[:80]
                        for k, v in c.items()})
        else:
            out.append(c)
    return repr(out)[:1500]


def check_statuses(got, want, what):
    """Every response has status `want` (reports all of them at once)."""
    bad = [(i, r.status, r.body[:200]) for i, r in enumerate(got) if r.status != want]
    h.check(not bad, "%s: expected every request to get %d; got %r" % (what, want, bad))


def has_run(seq, sub):
    n = len(sub)
    return n > 0 and any(seq[i:i + n] == sub for i in range(len(seq) - n + 1))


# ---------------------------------------------------------------------------
# V2 bodies, both directions


def v2_request(inputs, rid=None, outputs=None, parameters=None):
    """Builds a V2 request by hand so every data token is exactly as given.
    inputs: [{"name", "datatype", "shape", "data": JSON text bytes}] or with
    "raw": bytes (binary extension). outputs: [(name, binary_data bool)].
    Returns (body, headers)."""
    parts = []
    blobs = []
    for i in inputs:
        t = (b'{"name":"%s","datatype":"%s","shape":[%s]'
             % (i["name"].encode(), i["datatype"].encode(),
                b",".join(b"%d" % d for d in i["shape"])))
        if "raw" in i:
            t += b',"parameters":{"binary_data_size":%d}}' % len(i["raw"])
            blobs.append(i["raw"])
        else:
            t += b',"data":' + i["data"] + b"}"
        parts.append(t)
    head = b"{"
    if rid is not None:
        head += b'"id":"%s",' % rid.encode()
    head += b'"inputs":[' + b",".join(parts) + b"]"
    if outputs is not None:
        head += b',"outputs":[' + b",".join(
            b'{"name":"%s","parameters":{"binary_data":%s}}'
            % (n.encode(), b"true" if b else b"false") for n, b in outputs) + b"]"
    if parameters is not None:
        head += b',"parameters":' + parameters
    head += b"}"
    if not blobs:
        return head, {"Content-Type": "application/json"}
    return head + b"".join(blobs), {"Content-Type": "application/octet-stream",
                                    "Inference-Header-Content-Length": str(len(head))}


def decode_v2(body, hlen, key, what):
    """A V2 request (key "inputs") or answer (key "outputs"): (top-level
    parsed header, [{"name","datatype","shape","text": data JSON bytes or
    None,"raw": bytes or None}]). Binary parts are cut in order by
    binary_data_size; what is left over must be nothing."""
    if hlen is not None:
        try:
            n = int(hlen)
        except ValueError:
            raise h.CaseFailure("%s: Inference-Header-Content-Length %r" % (what, hlen))
        h.check(0 <= n <= len(body), "%s: Inference-Header-Content-Length %d for a %d-byte body"
                % (what, n, len(body)))
        head, rest = body[:n], body[n:]
    else:
        head, rest = body, b""
    try:
        top = em.loads_raw(head)
        span = em.member_span(head, key)
    except (ValueError, em.ScanError) as e:
        raise h.CaseFailure("%s: JSON header does not parse (%s): %r" % (what, e, head[:300]))
    h.check(isinstance(top, dict) and span is not None and isinstance(top.get(key), list),
            "%s: no %r list in %r" % (what, key, head[:300]))
    out = []
    off = 0
    for t, (s, e) in zip(top[key], em.elements(head, span[0])):
        spans = {k: (a, b) for k, a, b in em.members(head, s)}
        size = (t.get("parameters") or {}).get("binary_data_size")
        ent = {"name": t.get("name"), "datatype": t.get("datatype"),
               "shape": [int(d) for d in t.get("shape") or []], "text": None, "raw": None,
               "binary_data_size": None if size is None else int(size)}
        if size is not None:
            h.check("data" not in spans, "%s: %s has both data and binary_data_size"
                    % (what, ent["name"]))
            n = int(size)
            h.check(off + n <= len(rest), "%s: %s binary_data_size %d but only %d bytes left"
                    % (what, ent["name"], n, len(rest) - off))
            ent["raw"] = rest[off:off + n]
            off += n
        else:
            h.check("data" in spans, "%s: %s has neither data nor binary_data_size"
                    % (what, ent["name"]))
            ent["text"] = head[spans["data"][0]:spans["data"][1]]
        out.append(ent)
    h.check_eq(off, len(rest), "%s: binary bytes accounted for by binary_data_size" % what)
    return top, out


def answer_of(r, what):
    """(parsed header, {name: output}) of a 200 V2 answer."""
    h.check_eq(r.status, 200, "%s status (body %r)" % (what, r.body[:300]))
    top, outs = decode_v2(r.body, r.header("inference-header-content-length"), "outputs", what)
    return top, {o["name"]: o for o in outs}


def call_inputs(call):
    top, ins = decode_v2(call["body"], call["headers"].get("inference-header-content-length"),
                         "inputs", "call to the model")
    return {i["name"]: i for i in ins}


def tokens(ent):
    """Raw data tokens of a JSON tensor (None for a binary one)."""
    return None if ent["text"] is None else em.scalar_tokens(ent["text"])


def canon(ent):
    """A tensor's values, whatever its encoding: FP32/FP64/FP16 as bit
    patterns, integers as int, BOOL as bool, BYTES as bytes."""
    dt = ent["datatype"]
    if ent["raw"] is not None:
        raw = ent["raw"]
        if dt == "BYTES":
            out, i = [], 0
            while i + 4 <= len(raw):
                (n,) = struct.unpack_from("<I", raw, i)
                out.append(raw[i + 4:i + 4 + n])
                i += 4 + n
            return out
        fmt, size = em.FIXED[dt]
        if dt in em.FLOATS:
            return [raw[j:j + size] for j in range(0, len(raw), size)]
        return [v for (v,) in struct.iter_unpack(fmt, raw)]
    out = []
    for tok in em.scalar_tokens(ent["text"]):
        try:
            if dt == "BYTES":
                out.append(em.loads_raw(tok).encode("utf-8", "surrogatepass"))
            elif dt == "BOOL":
                out.append(tok == b"true")
            elif dt in em.FLOATS:
                out.append(struct.pack(em.FIXED[dt][0], float(tok)))
            else:
                out.append(int(tok))
        except (ValueError, OverflowError, struct.error):
            out.append(("unconvertible", tok))
    return out


def f32(values):
    return [struct.pack("<f", v) for v in values]


def check_json_answer(r, what):
    h.check(r.header("inference-header-content-length") is None,
            "%s asked for JSON but got a binary answer (headers %r)" % (what, r.headers))
    ct = r.header("content-type") or ""
    h.check(ct.startswith("application/json"), "%s: Content-Type %r" % (what, ct))


def check_binary_answer(r, what):
    ct = r.header("content-type") or ""
    h.check(ct.startswith("application/octet-stream"),
            "%s asked for binary output: Content-Type %r (body %r)" % (what, ct, r.body[:200]))
    hl = r.header("inference-header-content-length")
    h.check(hl is not None, "%s: no Inference-Header-Content-Length" % what)
    n = int(hl)
    try:
        em.loads_raw(r.body[:n])
    except ValueError as e:
        raise h.CaseFailure("%s: the first %d bytes (Inference-Header-Content-Length) are not "
                            "one JSON header: %s (%r)" % (what, n, e, r.body[:n + 20]))
    return n


# ---------------------------------------------------------------------------
# V1


V1_ROWS = [
    [b"[1.10000000000000000001, 12345678901234567890123]", b'{"a":[1,{"b":null}]}'],
    [b"[-0.0, 1E+400, 2.5e-308]", '"\u00e9\\u00e9\\ud83d\\ude00"'.encode("utf-8"), b"true"],
    [b'[0.1e1, "x"]', b'[ 1 ,\t2 , { "k" : "v  w" } ]', b'{ "n" : [ ] , "m":-0 }'],
]


def v1_body(rows):
    return b'{"instances": [' + b", ".join(rows) + b"]}"


def v1_elements(body, key, what):
    try:
        span = em.member_span(body, key)
        h.check(span is not None, "%s: no %r in %r" % (what, key, body[:300]))
        return [em.squeeze(body[s:e]) for s, e in em.elements(body, span[0])]
    except em.ScanError as e:
        raise h.CaseFailure("%s: %s in %r" % (what, e, body[:300]))


@suite.case
def v1_values_survive_byte_for_byte_through_a_merged_call():
    with h.Env("lossless-v1") as env:
        model, gw = start(env)
        got = send_together(model, gw, [(V1, v1_body(rows), None) for rows in V1_ROWS])
        check_statuses(got, 200, "V1 clients")
        want = [[em.squeeze(r) for r in rows] for rows in V1_ROWS]
        calls = inference_calls(model, V1)
        sent = [v1_elements(c["body"], "instances", "call to the model") for c in calls]
        for i, w in enumerate(want):
            h.check(any(has_run(s, w) for s in sent),
                    "client %d's rows %r do not appear, as written, in any call to the model: %r"
                    % (i, w, [c["body"] for c in calls]))
        check_merged(sent, len(V1_ROWS), [lambda s, w=w: has_run(s, w) for w in want], "V1")
        for i, r in enumerate(got):
            h.check_eq(r.status, 200, "client %d status (body %r)" % (i, r.body[:300]))
            preds = v1_elements(r.body, "predictions", "client %d answer" % i)
            h.check_eq(preds, want[i], "client %d predictions (raw text, whitespace outside "
                       "strings removed)" % i)
            flat = em.squeeze(r.body)
            for j, other in enumerate(want):
                if j != i:
                    for row in other:
                        h.check(row not in flat, "client %d's answer carries client %d's row %r"
                                % (i, j, row))


# ---------------------------------------------------------------------------
# V2 JSON

I64 = [b"9223372036854775807", b"-9223372036854775808", b"9007199254740993",
       b"-9223372036854775807", b"0"]
U64 = [b"18446744073709551615", b"0"]
F64 = [b"1.10000000000000000001", b"-0.0", b"2.5e-308"]


def rot(xs, k):
    return xs[k:] + xs[:k]


def arr(toks):
    return b"[" + b", ".join(toks) + b"]"


@suite.case
def v2_int64_uint64_fp64_limits_pass_as_written_both_ways():
    with h.Env("lossless-v2-limits") as env:
        model, gw = start(env)
        # Three clients, each its own arrangement of the same extreme values
        # (the second sends two rows), so every client's run is recognisable.
        clients = []
        for k, rows in enumerate([1, 2, 1]):
            i64 = [t for r in range(rows) for t in rot(I64, k + r)]
            u64 = [t for r in range(rows) for t in rot(U64, k + r)]
            f64 = [t for r in range(rows) for t in rot(F64, k + r)]
            clients.append({"rid": "limits-%d" % k, "rows": rows,
                            "data": {"i64": i64, "u64": u64, "f64": f64}})
        dts = {"i64": ("INT64", 5), "u64": ("UINT64", 2), "f64": ("FP64", 3)}
        reqs = []
        for c in clients:
            ins = [{"name": n, "datatype": dt, "shape": [c["rows"], w], "data": arr(c["data"][n])}
                   for n, (dt, w) in dts.items()]
            body, hd = v2_request(ins, rid=c["rid"])
            reqs.append((V2, body, hd))
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "INT64/UINT64/FP64 clients")
        calls = [call_inputs(c) for c in inference_calls(model, V2)]
        for k, c in enumerate(clients):
            for n in dts:
                h.check(any(tokens(ci[n]) is not None and has_run(tokens(ci[n]), c["data"][n])
                            for ci in calls if n in ci),
                        "client %d's %s tokens %r do not reach the model as written; calls got %r"
                        % (k, n, c["data"][n], [tokens(ci.get(n)) if n in ci else None
                                                for ci in calls]))
        check_merged(calls, len(clients),
                     [lambda ci, c=c: has_run(tokens(ci["i64"]) or [], c["data"]["i64"])
                      for c in clients], "V2 INT64")
        for k, (c, r) in enumerate(zip(clients, got)):
            what = "client %d" % k
            top, outs = answer_of(r, what)
            check_json_answer(r, what)
            h.check_eq(top.get("id"), c["rid"], "%s id" % what)
            h.check_eq(sorted(outs), sorted(dts), "%s output names" % what)
            for n, (dt, w) in dts.items():
                h.check_eq(outs[n]["datatype"], dt, "%s %s datatype" % (what, n))
                h.check_eq(outs[n]["shape"], [c["rows"], w], "%s %s shape" % (what, n))
                h.check_eq(tokens(outs[n]), c["data"][n], "%s %s data (raw tokens)" % (what, n))


BAD = [("INT64", b"9223372036854775808"), ("INT64", b"-9223372036854775809"),
       ("UINT64", b"18446744073709551616"), ("UINT64", b"-1"), ("INT8", b"128"),
       ("UINT8", b"256"), ("FP32", b"3.5e38"), ("INT32", b"1.5")]
GOOD = [[b"11", b"9223372036854775807"], [b"12", b"-9223372036854775808"], [b"13", b"14"]]


@suite.case
def out_of_range_values_get_400_naming_the_value_and_spare_batch_mates():
    with h.Env("lossless-range") as env:
        model, gw = start(env)
        reqs = []
        for k, toks in enumerate(GOOD):
            reqs.append((V2,) + v2_request([{"name": "x", "datatype": "INT64", "shape": [1, 2],
                                             "data": arr(toks)}], rid="good-%d" % k))
        for k, (dt, bad) in enumerate(BAD):
            reqs.append((V2,) + v2_request([{"name": "x", "datatype": dt, "shape": [1, 2],
                                             "data": arr([b"3", bad])}], rid="bad-%d" % k))
        # Interleave, so the bad requests arrive among the good ones.
        order = [0, 3, 4, 1, 5, 6, 7, 2, 8, 9, 10]
        got_in_order = send_together(model, gw, [reqs[i] for i in order])
        got = [None] * len(reqs)
        for i, r in zip(order, got_in_order):
            got[i] = r
        problems = []  # every out-of-range request is judged before failing
        for k, (dt, bad) in enumerate(BAD):
            r = got[len(GOOD) + k]
            what = "%s %s" % (dt, bad.decode())
            try:
                h.check_error(r, 400, "bad_request", what)
                msg = r.json()["error"]
                h.check(bad.decode() in msg, "%s: the 400 message does not name the value: %r"
                        % (what, msg))
            except h.CaseFailure as e:
                problems.append(str(e))
        h.check(not problems, "; ".join(problems))
        calls = [call_inputs(c) for c in inference_calls(model, V2)]
        bad_toks = {b for _, b in BAD}
        for ci in calls:
            h.check(not bad_toks & set(tokens(ci["x"]) or []),
                    "a call to the model carried a rejected value: %r" % (ci["x"]["text"],))
        check_merged(calls, len(GOOD), [lambda ci, t=t: has_run(tokens(ci["x"]) or [], t)
                                        for t in GOOD], "valid INT64 requests")
        for k, toks in enumerate(GOOD):
            what = "valid request %d sent with the out-of-range ones" % k
            top, outs = answer_of(got[k], what)
            h.check_eq(top.get("id"), "good-%d" % k, "%s id" % what)
            h.check_eq(tokens(outs["x"]), toks, "%s data (raw tokens)" % what)
            h.check_eq(outs["x"]["shape"], [1, 2], "%s shape" % what)


@suite.case
def nested_and_flat_data_in_one_batch():
    with h.Env("lossless-nested") as env:
        model, gw = start(env)
        clients = [([2, 3], b"[[1,2,3],[4,5,6]]"), ([2, 3], b"[7,8,9,10,11,12]"),
                   ([1, 3], b"[ [13, 14, 15] ]")]
        reqs = [(V2,) + v2_request([{"name": "x", "datatype": "INT32", "shape": s, "data": d}],
                                   rid="n-%d" % k)
                for k, (s, d) in enumerate(clients)]
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "nested and flat clients")
        want = [em.scalar_tokens(d) for _, d in clients]
        calls = [call_inputs(c) for c in inference_calls(model, V2)]
        for ci in calls:
            x = ci["x"]
            h.check_eq(len(canon(x)), x["shape"][0] * 3,
                       "values in a merged call for its shape %r" % (x["shape"],))
        check_merged(calls, len(clients), [lambda ci, w=w: has_run(tokens(ci["x"]) or [], w)
                                           for w in want], "nested and flat INT32")
        for k, ((shape, _), r) in enumerate(zip(clients, got)):
            what = "client %d (%s)" % (k, "nested" if k != 1 else "flat")
            top, outs = answer_of(r, what)
            h.check_eq(top.get("id"), "n-%d" % k, "%s id" % what)
            h.check_eq(outs["x"]["shape"], shape, "%s shape" % what)
            h.check_eq(tokens(outs["x"]), want[k], "%s values in row-major order" % what)


@suite.case
def bool_and_bytes_tensors_batched_as_written():
    with h.Env("lossless-bytes-json") as env:
        model, gw = start(env)
        clients = [
            (1, [b"true", b"false"], [br'"a\"b \\ \u00e9 \ud83d\ude00"']),
            (2, [b"false", b"false", b"true", b"true"],
             [br'"tab\there\n"', '"\u00e9 raw/\\/"'.encode("utf-8")]),
            (1, [b"true", b"true"], [b'""']),
        ]
        reqs = []
        for k, (rows, flags, texts) in enumerate(clients):
            reqs.append((V2,) + v2_request(
                [{"name": "flag", "datatype": "BOOL", "shape": [rows, 2], "data": arr(flags)},
                 {"name": "text", "datatype": "BYTES", "shape": [rows, 1], "data": arr(texts)}],
                rid="b-%d" % k))
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "BOOL/BYTES clients")
        calls = [call_inputs(c) for c in inference_calls(model, V2)]
        check_merged(calls, len(clients), [lambda ci, t=c[2]: has_run(tokens(ci["text"]) or [], t)
                                           for c in clients], "BOOL/BYTES")
        for k, ((rows, flags, texts), r) in enumerate(zip(clients, got)):
            what = "client %d" % k
            h.check(any(has_run(tokens(ci["text"]) or [], texts) for ci in calls),
                    "%s's strings do not reach the model as written" % what)
            top, outs = answer_of(r, what)
            h.check_eq(top.get("id"), "b-%d" % k, "%s id" % what)
            h.check_eq(outs["flag"]["shape"], [rows, 2], "%s flag shape" % what)
            h.check_eq(tokens(outs["flag"]), flags, "%s BOOL data" % what)
            h.check_eq(outs["text"]["shape"], [rows, 1], "%s text shape" % what)
            h.check_eq(tokens(outs["text"]), texts, "%s BYTES data (raw, escapes as written)"
                       % what)


# ---------------------------------------------------------------------------
# V2 binary tensor data extension


def fp32_rows(k, rows):
    """Distinct float32 values for client k (not all exactly decimal)."""
    return [k * 100 + r * 10 + c + 0.1 * (k + 1) for r in range(rows) for c in range(4)]


def fp32_bytes(values):
    return b"".join(f32(values))


def binary_fp32_request(k, rows, values=None):
    raw = fp32_bytes(values if values is not None else fp32_rows(k, rows))
    return (V2,) + v2_request([{"name": "x", "datatype": "FP32", "shape": [rows, 4], "raw": raw}],
                              rid="bin-%d" % k, outputs=[("x", True)])


def check_binary_fp32(r, what, rid, rows, raw):
    n = check_binary_answer(r, what)
    top, outs = answer_of(r, what)
    h.check_eq(top.get("id"), rid, "%s id" % what)
    x = outs.get("x")
    h.check(x is not None, "%s: no output x in %r" % (what, r.body[:n]))
    h.check_eq(x["binary_data_size"], rows * 16, "%s binary_data_size" % what)
    h.check_eq(x["shape"], [rows, 4], "%s shape" % what)
    h.check_eq(len(r.body), n + rows * 16, "%s body length (header + binary data)" % what)
    h.check(r.body[n:] == raw, "%s: binary data is not its own input bytes: got %r want %r"
            % (what, r.body[n:], raw))


@suite.case
def binary_fp32_requests_are_batched():
    with h.Env("lossless-bin") as env:
        model, gw = start(env)
        rows = [1, 3, 2, 4]
        reqs = [binary_fp32_request(k, r) for k, r in enumerate(rows)]
        raws = [fp32_bytes(fp32_rows(k, r)) for k, r in enumerate(rows)]
        got = send_together(model, gw, reqs)
        calls = inference_calls(model, V2)
        check_merged(calls, len(reqs), [lambda c, raw=raw: raw in c["body"] for raw in raws],
                     "binary FP32")
        check_statuses(got, 200, "binary FP32 clients")
        for k, r in enumerate(got):
            check_binary_fp32(r, "binary client %d" % k, "bin-%d" % k, rows[k], raws[k])


@suite.case
def json_and_binary_clients_share_one_call_each_answered_in_its_encoding():
    with h.Env("lossless-mixed") as env:
        model, gw = start(env)
        # (rows, binary input, binary output)
        kinds = [(2, False, False), (1, True, True), (3, False, True), (2, True, False)]
        vals = [fp32_rows(k, rows) for k, (rows, _, _) in enumerate(kinds)]
        reqs = []
        for k, ((rows, bin_in, bin_out), v) in enumerate(zip(kinds, vals)):
            inp = {"name": "x", "datatype": "FP32", "shape": [rows, 4]}
            if bin_in:
                inp["raw"] = fp32_bytes(v)
            else:
                inp["data"] = arr([repr(x).encode() for x in v])
            # Every client lists output x (which outputs come back is part of
            # the batch key); only its binary_data flag differs.
            reqs.append((V2,) + v2_request([inp], rid="mix-%d" % k, outputs=[("x", bin_out)]))
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "JSON and binary clients")
        calls = inference_calls(model, V2)
        ins = [call_inputs(c) for c in calls]
        h.check_eq(len(calls), 1, "calls to the model for 4 JSON and binary requests of one "
                   "tensor (name, datatype, shape[1:])")
        check_merged(ins, len(reqs), [lambda ci, v=v: has_run(canon(ci["x"]), f32(v))
                                      for v in vals], "JSON + binary FP32")
        for k, (((rows, bin_in, bin_out), v), r) in enumerate(zip(zip(kinds, vals), got)):
            what = "client %d (%s in, %s out)" % (k, "binary" if bin_in else "JSON",
                                                 "binary" if bin_out else "JSON")
            h.check(any(has_run(canon(ci["x"]), f32(v)) for ci in ins),
                    "%s: its values are not in the call to the model" % what)
            if bin_out:
                check_binary_fp32(r, what, "mix-%d" % k, rows, fp32_bytes(v))
            else:
                top, outs = answer_of(r, what)
                check_json_answer(r, what)
                h.check_eq(top.get("id"), "mix-%d" % k, "%s id" % what)
                h.check_eq(outs["x"]["shape"], [rows, 4], "%s shape" % what)
                h.check(outs["x"]["text"] is not None, "%s: no JSON data" % what)
                h.check_eq(canon(outs["x"]), f32(v), "%s data as float32" % what)


BYTES_CLIENTS = [
    [b"hello", b""],
    [b"\x00nul\x00", "\u00e9\U0001F600".encode("utf-8"), b"\x01\x02\x7f"],
    [b'"quoted" \\ back'],
]


def bytes_blob(items):
    return b"".join(struct.pack("<I", len(x)) + x for x in items)


@suite.case
def binary_bytes_tensors_are_batched():
    with h.Env("lossless-bin-bytes") as env:
        model, gw = start(env)
        reqs = []
        for k, items in enumerate(BYTES_CLIENTS):
            reqs.append((V2,) + v2_request(
                [{"name": "s", "datatype": "BYTES", "shape": [len(items)],
                  "raw": bytes_blob(items)}],
                rid="by-%d" % k, outputs=[("s", True)]))
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "binary BYTES clients")
        calls = inference_calls(model, V2)
        ins = [call_inputs(c) for c in calls]
        check_merged(ins, len(reqs), [lambda ci, it=it: has_run(canon(ci["s"]), it)
                                      for it in BYTES_CLIENTS], "binary BYTES")
        for k, (items, r) in enumerate(zip(BYTES_CLIENTS, got)):
            what = "BYTES client %d" % k
            n = check_binary_answer(r, what)
            top, outs = answer_of(r, what)
            h.check_eq(top.get("id"), "by-%d" % k, "%s id" % what)
            blob = bytes_blob(items)
            h.check_eq(outs["s"]["shape"], [len(items)], "%s shape" % what)
            h.check_eq(outs["s"]["binary_data_size"], len(blob), "%s binary_data_size" % what)
            h.check_eq(r.body[n:], blob, "%s binary data (length-prefixed elements)" % what)


@suite.case
def model_answers_json_to_a_binary_batch():
    with h.Env("lossless-force-json") as env:
        model, gw = start(env, force="json")
        rows = [2, 1, 3]
        reqs = [binary_fp32_request(k, r) for k, r in enumerate(rows)]
        raws = [fp32_bytes(fp32_rows(k, r)) for k, r in enumerate(rows)]
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "binary clients of a model answering JSON")
        calls = [call_inputs(c) for c in inference_calls(model, V2)]
        check_merged(calls, len(reqs), [lambda ci, raw=raw: has_run(canon(ci["x"]), f32(
            [v for (v,) in struct.iter_unpack("<f", raw)])) for raw in raws], "binary FP32")
        for k, r in enumerate(got):
            check_binary_fp32(r, "binary client %d (model answered JSON)" % k, "bin-%d" % k,
                              rows[k], raws[k])


@suite.case
def model_answers_binary_to_a_json_batch():
    with h.Env("lossless-force-binary") as env:
        model, gw = start(env, force="binary")
        clients = [
            ([b"9223372036854775807", b"-9223372036854775808", b"1"], [b"0.1", b"-2.5e-308"]),
            ([b"9007199254740993", b"2", b"-9223372036854775807"], [b"1e300", b"-0.0"]),
            ([b"3", b"4", b"5"], [b"1.10000000000000000001", b"123456.789"]),
        ]
        reqs = []
        for k, (i64, f64) in enumerate(clients):
            reqs.append((V2,) + v2_request(
                [{"name": "i", "datatype": "INT64", "shape": [1, 3], "data": arr(i64)},
                 {"name": "f", "datatype": "FP64", "shape": [1, 2], "data": arr(f64)}],
                rid="fb-%d" % k))
        got = send_together(model, gw, reqs)
        check_statuses(got, 200, "JSON clients of a model answering binary")
        calls = [call_inputs(c) for c in inference_calls(model, V2)]
        check_merged(calls, len(clients), [lambda ci, t=i64: has_run(canon(ci["i"]),
                                                                      [int(x) for x in t])
                                           for i64, _ in clients], "JSON INT64/FP64")
        for k, ((i64, f64), r) in enumerate(zip(clients, got)):
            what = "JSON client %d (model answered binary)" % k
            top, outs = answer_of(r, what)
            check_json_answer(r, what)
            h.check_eq(top.get("id"), "fb-%d" % k, "%s id" % what)
            h.check(outs["i"]["text"] is not None and outs["f"]["text"] is not None,
                    "%s: outputs without JSON data: %r" % (what, r.body[:300]))
            h.check_eq(canon(outs["i"]), [int(t) for t in i64], "%s INT64 values" % what)
            h.check_eq(canon(outs["f"]), [struct.pack("<d", float(t)) for t in f64],
                       "%s FP64 values (as float64 bits)" % what)
            h.check_eq(outs["i"]["shape"], [1, 3], "%s INT64 shape" % what)


@suite.case
def binary_answer_of_the_wrong_size_fails_the_batch_with_502():
    with h.Env("lossless-wrong-size") as env:
        model, gw = start(env, wrong_binary_size=True)
        rows = [1, 2, 3]
        reqs = [binary_fp32_request(k, r) for k, r in enumerate(rows)]
        raws = [fp32_bytes(fp32_rows(k, r)) for k, r in enumerate(rows)]
        got = send_together(model, gw, reqs)
        calls = [(c, call_inputs(c)) for c in inference_calls(model, V2)]
        check_merged([c for c, _ in calls], len(reqs),
                     [lambda c, raw=raw: raw in c["body"] for raw in raws], "binary FP32")
        for k, r in enumerate(got):
            what = "member %d of a batch answered one byte short" % k
            h.check_error(r, 502, "bad_response", what)
            msg = r.json()["error"]
            h.check("binary" in msg.lower(), "%s: the 502 message does not say binary: %r"
                    % (what, msg))
            # The model announced binary_data_size S (what the call sent) and
            # sent S - 1 bytes: the message must give one of those counts.
            mine = [ci for c, ci in calls if raws[k] in c["body"]]
            h.check_eq(len(mine), 1, "%s: calls that carried its bytes" % what)
            size = 4 * len(canon(mine[0]["x"]))
            nums = set(re.findall(r"\d+", msg))
            h.check(str(size) in nums or str(size - 1) in nums,
                    "%s: the 502 message gives no byte count of the answer (%d announced, %d "
                    "sent): %r" % (what, size, size - 1, msg))


# ---------------------------------------------------------------------------
# regression: the merged call's X-Request-Id


def printable(s):
    return all(0x20 <= ord(ch) <= 0x7E for ch in s)


@suite.case
def long_request_id_on_a_batched_request_gives_a_clean_batch_id():
    long_id = "".join(chr(0x21 + (i * 7) % 94) for i in range(300))
    mid_id = "".join(chr(0x41 + (i * 5) % 26) for i in range(100))
    with h.Env("lossless-reqid") as env:
        model, gw = start(env)
        for order in ([long_id, mid_id], [mid_id, long_id]):
            model.reset()
            rows = [[b"[%d, 0.5]" % (len(rid) + k)] for k, rid in enumerate(order)]
            got = send_together(model, gw, [(V1, v1_body(r), {"X-Request-Id": rid})
                                            for r, rid in zip(rows, order)], ordered=True)
            what = "first member's X-Request-Id of %d chars" % len(order[0])
            for k, r in enumerate(got):
                h.check_eq(r.status, 200, "%s: client %d status (body %r)"
                           % (what, k, r.body[:200]))
                h.check_eq(v1_elements(r.body, "predictions", "answer"),
                           [em.squeeze(x) for x in rows[k]], "%s: client %d predictions"
                           % (what, k))
            calls = inference_calls(model, V1)
            check_merged(calls, 2, [lambda c, r=r: em.squeeze(r[0]) in em.squeeze(c["body"])
                                    for r in rows], what)
            for c in calls:
                ids = [v for k, v in c["header_list"] if k.lower() == "x-request-id"]
                h.check_eq(len(ids), 1, "%s: X-Request-Id headers on the call" % what)
                h.check(printable(ids[0]), "%s: the call's X-Request-Id is not printable ASCII: "
                        "%r" % (what, ids[0]))
                h.check(ids[0].startswith("batch-"), "%s: the call's X-Request-Id %r does not "
                        "start with batch-" % (what, ids[0]))


if __name__ == "__main__":
    suite.run()
