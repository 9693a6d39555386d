"""A recording echo model for the lossless batching tests.

A threaded HTTP/1.1 server (keep-alive, Content-Length framing) that answers
inference calls with the caller's own tensors, copied byte for byte where the
encoding allows, and records every call so a test can read exactly what the
gateway sent:

  GET  /v2/health/ready, /v2/health/live  200 {"ready":true} (not recorded)
  GET  /_calls     recorded calls: [{"method","path","headers":[[k,v]...],"body": base64}]
  POST /_reset     forgets the recorded calls
  POST /_config    {"delay_ms": 200, "force": "json"|"binary"|null, "wrong_binary_size": false,
                    "drop_after_read": 0, "hop_headers": false}
                   drop_after_read N: the next N inference calls are recorded, then the
                   connection is closed without an answer (a worker that died mid-call);
                   hop_headers: answers carry "Connection: X-Hop-Only" and "X-Hop-Only: 1"
                   Misbehaviours (fault injection, tests/integration/test_faults.py). Each
                   key takes true (every inference call until set back to false/0) or a
                   count N (the next N inference calls); an inference call is any recorded
                   call (not the /_* control paths and not the readiness endpoints):
                   "crash_after_read": N   the Nth inference call from now is recorded, then
                       the model goes down: its listener stops listening (connections are
                       refused; the port stays bound) and every open connection, the one
                       that call came on included, is shut down without an answer. It stays
                       down until SIGUSR1 (harness EchoModel.revive()), which listens again
                       on the same port; the recorded calls and the config are kept.
                   "hang"       the call is never answered; when "hang" is set back to false
                       (or the model goes down) the held connection is closed, unanswered
                   "hang_health"  the readiness/liveness endpoints hang the same way
                   "hold"       the call waits, like GET /_block (counted in /_state
                       "blocked"), until POST /_release, then is answered normally
                   "byte_by_byte"  the whole answer is written one byte at a time,
                       "byte_delay_ms" (default 1) between bytes
                   "malformed"  garbage instead of a status line, then close
                   "informational"  "HTTP/1.1 100 Continue" and "HTTP/1.1 103 Early Hints"
                       (each its own write) before the real answer
                   "wrong_content_length"  Content-Length 16 larger than the body, the
                       body, then close (FIN)
                   "reset_mid_body"  the head and the first half of the body, then RST
                       (SO_LINGER 0)
                   "stall_mid_body"  the head and the first half of the body, then waits
                       (counted in "blocked") until POST /_release, then the rest
                   "wrong_rows"  V1: one prediction fewer than instances; V2 (JSON
                       outputs): each output's shape[0] one less and its last row dropped
  POST /echo...    (any path starting /echo, any method) recorded; answers 200 with the
                   request's body (GET: the path), Content-Type application/octet-stream
  GET  /_block     held until POST /_release (bounded at 30 s); a test sends it through the
                   gateway's passthrough route to hold the gateway's only concurrency slot
                   while the requests it wants merged queue up (not recorded)
  POST /_release   lets every held /_block answer
  GET  /_state     {"blocked": n, "inflight": n, "calls": n}

  POST /v1/models/<m>:predict  {"instances":[...]} -> {"predictions":[...],"model_name":"<m>"};
       the predictions array is the instances array's text, byte for byte.
  POST /v2/models/<m>/infer    JSON or the binary tensor data extension
       (Inference-Header-Content-Length): one output per input, same name, datatype
       and shape; binary when asked (Triton semantics: outputs[].parameters.binary_data
       for that name, else top-level parameters.binary_data_output) unless `force`
       says otherwise. A JSON output copies the input's data text when the input was
       JSON, else decodes the bytes; a binary output is the input's bytes when the
       input was binary, else the JSON values packed little-endian. The request's
       "id" is echoed when present.

Numbers are never parsed into doubles on the way through: raw spans are found
with a small scanner that respects strings, and values (when needed) come from
json.loads with parse_int/parse_float keeping the text.

Run: echo_model.py [--port 0] -- prints the bound port on stdout, then serves.
SIGUSR1 brings a model that "crashed" (crash_after_read) back on the same port.
Stdlib only (/usr/bin/python3).
"""

import argparse
import base64
import http.server
import io
import json
import signal
import socket
import struct
import sys
import threading
import time

# ---------------------------------------------------------------------------
# a raw JSON scanner over bytes: spans, never values

WS = b" \t\r\n"


class RawNum(str):
    """A JSON number kept as its text (json.loads parse_int/parse_float)."""


def loads_raw(text):
    """json.loads keeping every number as RawNum text."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    return json.loads(text, parse_int=RawNum, parse_float=RawNum)


class ScanError(ValueError):
    pass


def skip_ws(b, i):
    n = len(b)
    while i < n and b[i] in WS:
        i += 1
    return i


def _string_end(b, i):
    """b[i] is '"'; returns the index just past the closing quote."""
    j = i + 1
    n = len(b)
    while j < n:
        c = b[j]
        if c == 0x5C:  # backslash: skip the escaped byte
            j += 2
        elif c == 0x22:
            return j + 1
        else:
            j += 1
    raise ScanError("unterminated string at %d" % i)


def value_end(b, i):
    """b[i] starts a JSON value; returns the index just past it."""
    n = len(b)
    if i >= n:
        raise ScanError("value expected at %d" % i)
    c = b[i]
    if c == 0x22:
        return _string_end(b, i)
    if c in b"[{":
        depth = 0
        j = i
        while j < n:
            c = b[j]
            if c == 0x22:
                j = _string_end(b, j)
                continue
            if c in b"[{":
                depth += 1
            elif c in b"]}":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise ScanError("unterminated container at %d" % i)
    j = i
    while j < n and b[j] not in b",]}" and b[j] not in WS:
        j += 1
    if j == i:
        raise ScanError("value expected at %d" % i)
    return j


def members(b, i):
    """b[i] (after whitespace) is '{': [(key, vstart, vend)] of that object."""
    i = skip_ws(b, i)
    if i >= len(b) or b[i] != 0x7B:
        raise ScanError("object expected at %d" % i)
    out = []
    i = skip_ws(b, i + 1)
    if i < len(b) and b[i] == 0x7D:
        return out
    while True:
        i = skip_ws(b, i)
        if i >= len(b) or b[i] != 0x22:
            raise ScanError("member name expected at %d" % i)
        ke = _string_end(b, i)
        key = json.loads(b[i:ke].decode("utf-8"))
        i = skip_ws(b, ke)
        if i >= len(b) or b[i] != 0x3A:
            raise ScanError("':' expected at %d" % i)
        vs = skip_ws(b, i + 1)
        ve = value_end(b, vs)
        out.append((key, vs, ve))
        i = skip_ws(b, ve)
        if i < len(b) and b[i] == 0x2C:
            i += 1
            continue
        if i < len(b) and b[i] == 0x7D:
            return out
        raise ScanError("',' or '}' expected at %d" % i)


def elements(b, i):
    """b[i] (after whitespace) is '[': [(vstart, vend)] of that array."""
    i = skip_ws(b, i)
    if i >= len(b) or b[i] != 0x5B:
        raise ScanError("array expected at %d" % i)
    out = []
    i = skip_ws(b, i + 1)
    if i < len(b) and b[i] == 0x5D:
        return out
    while True:
        vs = skip_ws(b, i)
        ve = value_end(b, vs)
        out.append((vs, ve))
        i = skip_ws(b, ve)
        if i < len(b) and b[i] == 0x2C:
            i += 1
            continue
        if i < len(b) and b[i] == 0x5D:
            return out
        raise ScanError("',' or ']' expected at %d" % i)


def member_span(b, key, i=0):
    """(vstart, vend) of member `key` of the object at b[i], or None."""
    for k, vs, ve in members(b, i):
        if k == key:
            return vs, ve
    return None


def scalar_tokens(b, i=0, end=None):
    """Every scalar token (number, string with its quotes, true/false/null)
    of the JSON text b[i:end], in order, as raw bytes: nesting, commas and
    whitespace dropped. Compares nested and flat data token by token."""
    end = len(b) if end is None else end
    out = []
    while i < end:
        c = b[i]
        if c in WS or c in b"[]{},:":
            i += 1
            continue
        j = value_end(b, i)
        out.append(bytes(b[i:j]))
        i = j
    return out


def squeeze(b):
    """The JSON text b without whitespace outside strings."""
    out = bytearray()
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c == 0x22:
            j = _string_end(b, i)
            out += b[i:j]
            i = j
        elif c in WS:
            i += 1
        else:
            out.append(c)
            i += 1
    return bytes(out)


# ---------------------------------------------------------------------------
# V2 datatypes

FIXED = {
    "BOOL": ("<?", 1), "INT8": ("<b", 1), "UINT8": ("<B", 1), "INT16": ("<h", 2),
    "UINT16": ("<H", 2), "INT32": ("<i", 4), "UINT32": ("<I", 4), "INT64": ("<q", 8),
    "UINT64": ("<Q", 8), "FP16": ("<e", 2), "FP32": ("<f", 4), "FP64": ("<d", 8),
}
FLOATS = ("FP16", "FP32", "FP64")


def flatten(v):
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(flatten(x))
        return out
    return [v]


def encode_values(dtype, values):
    """JSON values (RawNum, bool, str) -> the binary extension's bytes."""
    out = bytearray()
    if dtype == "BYTES":
        for v in values:
            if isinstance(v, RawNum) or not isinstance(v, str):
                raise ValueError("BYTES element %r is not a string" % (v,))
            raw = v.encode("utf-8", "surrogatepass")
            out += struct.pack("<I", len(raw)) + raw
        return bytes(out)
    if dtype not in FIXED:
        raise ValueError("unsupported datatype %r" % dtype)
    fmt, _ = FIXED[dtype]
    for v in values:
        if dtype == "BOOL":
            if not isinstance(v, bool):
                raise ValueError("BOOL element %r is not true/false" % (v,))
            out += struct.pack(fmt, v)
        elif dtype in FLOATS:
            out += struct.pack(fmt, float(v))
        else:
            out += struct.pack(fmt, int(v))
    return bytes(out)


def decode_values(dtype, raw):
    """The binary extension's bytes -> JSON value texts (str), in order."""
    texts = []
    if dtype == "BYTES":
        i = 0
        while i < len(raw):
            if i + 4 > len(raw):
                raise ValueError("BYTES element length cut at byte %d" % i)
            (n,) = struct.unpack_from("<I", raw, i)
            i += 4
            if i + n > len(raw):
                raise ValueError("BYTES element of %d bytes cut at byte %d" % (n, i))
            texts.append(json.dumps(raw[i:i + n].decode("utf-8", "replace")))
            i += n
        return texts
    if dtype not in FIXED:
        raise ValueError("unsupported datatype %r" % dtype)
    fmt, size = FIXED[dtype]
    if len(raw) % size:
        raise ValueError("%d bytes is not a whole number of %s" % (len(raw), dtype))
    for (v,) in struct.iter_unpack(fmt, raw):
        if dtype == "BOOL":
            texts.append("true" if v else "false")
        elif dtype in FLOATS:
            texts.append(repr(float(v)))
        else:
            texts.append(str(v))
    return texts


def truthy(v):
    return v is True or (isinstance(v, str) and v.lower() == "true")


# ---------------------------------------------------------------------------
# the model


class BadRequest(Exception):
    pass


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []
        self.cfg = {"delay_ms": 200, "force": None, "wrong_binary_size": False,
                    "drop_after_read": 0, "hop_headers": False}
        self.cfg.update({k: False for k in FAULTS})
        self.cfg["byte_delay_ms"] = 1
        self.blocks = []  # Events of held /_block calls
        self.inflight = 0
        self.hung = []    # (Event, key) of calls held by "hang" / "hang_health"
        self.conns = set()  # open connections (shut down when the model "crashes")
        self.down = False
        self.want_revive = False
        self.server = None


# Misbehaviours a call can be given (see the module docstring). "hang_health" is
# taken by the readiness endpoints, every other one by inference calls.
FAULTS = ("crash_after_read", "hang", "hang_health", "hold", "byte_by_byte", "malformed",
          "informational", "wrong_content_length", "reset_mid_body", "stall_mid_body",
          "wrong_rows")


STATE = State()


def take_fault(key):
    """Whether this call gets misbehaviour `key` (true, or a count > 0 that is
    decremented). Call with STATE.lock held."""
    v = STATE.cfg.get(key)
    if v is True:
        return True
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        STATE.cfg[key] = v - 1
        return True
    return False


def go_down():
    """The model "crashes": stop listening (the port stays bound, so connects
    are refused) and shut every open connection. Held calls are let go."""
    with STATE.lock:
        if STATE.down:
            return
        STATE.down = True
        conns = list(STATE.conns)
        hung, STATE.hung = STATE.hung, []
    sys.stderr.write("echo-model: down (crash_after_read)\n")
    try:
        STATE.server.socket.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    for c in conns:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for ev, _ in hung:
        ev.set()


def revive():
    """Listens again on the same port (main thread, after SIGUSR1)."""
    STATE.want_revive = False
    if not STATE.down:
        return
    STATE.server.socket.listen(STATE.server.request_queue_size)
    with STATE.lock:
        STATE.down = False
    sys.stderr.write("echo-model: up again\n")


def release_hung():
    """Lets go of the calls held by "hang" / "hang_health" whose key is off now."""
    with STATE.lock:
        go = [x for x in STATE.hung if not STATE.cfg.get(x[1])]
        STATE.hung = [x for x in STATE.hung if STATE.cfg.get(x[1])]
    for ev, _ in go:
        ev.set()


def drop_last_row(text, shape):
    """A V2 data text (nested or flat) without its last dim-0 row."""
    spans = elements(text, 0)
    if not spans:
        return text
    if text[spans[0][0]] == 0x5B:  # nested: one element per row
        keep = spans[:-1]
    else:
        per_row = 1
        for d in shape[1:]:
            per_row *= int(d)
        keep = spans[:max(0, len(spans) - per_row)]
    return b"[" + b",".join(text[a:b] for a, b in keep) + b"]"


def v1_answer(model, body, wrong_rows=False):
    try:
        span = member_span(body, "instances")
    except ScanError as e:
        raise BadRequest("body: %s" % e)
    if span is None:
        raise BadRequest("body has no \"instances\"")
    preds = body[span[0]:span[1]]
    if wrong_rows:
        try:
            rows = elements(body, span[0])
        except ScanError as e:
            raise BadRequest("instances: %s" % e)
        preds = b"[" + b",".join(body[a:b] for a, b in rows[:-1]) + b"]"
    out = (b'{"predictions":' + preds + b',"model_name":'
           + json.dumps(model).encode() + b"}")
    return "application/json", {}, out


def v2_answer(model, body, hlen_text, cfg):
    if hlen_text is not None:
        try:
            hlen = int(hlen_text)
        except ValueError:
            raise BadRequest("Inference-Header-Content-Length %r" % hlen_text)
        if hlen < 0 or hlen > len(body):
            raise BadRequest("Inference-Header-Content-Length %d for a %d-byte body"
                             % (hlen, len(body)))
        head, rest = body[:hlen], body[hlen:]
    else:
        head, rest = body, b""
    try:
        req = loads_raw(head)
        top = members(head, 0)
    except (ValueError, ScanError) as e:
        raise BadRequest("header JSON: %s" % e)
    tops = {k: (s, e) for k, s, e in top}
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list) or \
            "inputs" not in tops:
        raise BadRequest("no \"inputs\" list")
    in_spans = elements(head, tops["inputs"][0])
    asked = {}
    for o in req.get("outputs") or []:
        if isinstance(o, dict) and isinstance(o.get("name"), str):
            asked[o["name"]] = o.get("parameters") or {}
    all_binary = truthy((req.get("parameters") or {}).get("binary_data_output"))

    off = 0
    outs_json = []
    blobs = []
    for inp, (s, e) in zip(req["inputs"], in_spans):
        name = inp.get("name")
        dtype = inp.get("datatype")
        shape = inp.get("shape")
        if not isinstance(name, str) or not isinstance(dtype, str) or not isinstance(shape, list):
            raise BadRequest("an input lacks name, datatype or shape")
        ispan = {k: (vs, ve) for k, vs, ve in members(head, s)}
        size = (inp.get("parameters") or {}).get("binary_data_size")
        in_raw = None       # the input's bytes when it came binary
        in_text = None      # its data text when it came JSON
        if size is not None:
            n = int(size)
            if off + n > len(rest):
                raise BadRequest("input %s: binary_data_size %d but %d bytes left"
                                 % (name, n, len(rest) - off))
            in_raw = rest[off:off + n]
            off += n
        elif "data" in ispan:
            in_text = head[ispan["data"][0]:ispan["data"][1]]
        else:
            raise BadRequest("input %s has neither data nor binary_data_size" % name)

        p = asked.get(name)
        binary = truthy(p["binary_data"]) if p is not None and "binary_data" in p else all_binary
        if cfg["force"] == "json":
            binary = False
        elif cfg["force"] == "binary":
            binary = True

        out_shape = [int(d) for d in shape]
        if cfg.get("_wrong_rows") and not binary and out_shape and out_shape[0] > 0:
            try:
                if in_text is None:
                    in_text = ("[" + ",".join(decode_values(dtype, in_raw)) + "]").encode()
                in_text = drop_last_row(in_text, out_shape)
            except (ValueError, ScanError) as ex:
                raise BadRequest("input %s: %s" % (name, ex))
            out_shape[0] -= 1
        shape_text = json.dumps(out_shape, separators=(",", ":")).encode()
        o = (b'{"name":' + json.dumps(name).encode() + b',"datatype":'
             + json.dumps(dtype).encode() + b',"shape":' + shape_text)
        try:
            if binary:
                blob = in_raw if in_raw is not None else \
                    encode_values(dtype, flatten(inp.get("data")))
                blobs.append(blob)
                o += b',"parameters":{"binary_data_size":%d}}' % len(blob)
            else:
                text = in_text if in_text is not None else \
                    ("[" + ",".join(decode_values(dtype, in_raw)) + "]").encode()
                o += b',"data":' + text + b"}"
        except (ValueError, struct.error, OverflowError) as ex:
            raise BadRequest("input %s: %s" % (name, ex))
        outs_json.append(o)

    hdr = b'{"model_name":' + json.dumps(model).encode()
    if "id" in tops:
        hdr += b',"id":' + head[tops["id"][0]:tops["id"][1]]
    hdr += b',"outputs":[' + b",".join(outs_json) + b"]}"
    if not blobs:
        return "application/json", {}, hdr
    data = b"".join(blobs)
    if cfg["wrong_binary_size"]:
        data = data[:-1]
    return ("application/octet-stream", {"Inference-Header-Content-Length": str(len(hdr))},
            hdr + data)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo-model/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("echo-model: %s\n" % (fmt % args))

    def setup(self):
        super().setup()
        self.shape = ()  # misbehaviours of the current call's answer
        with STATE.lock:
            STATE.conns.add(self.connection)
            down = STATE.down
        if down:  # accepted as the model went down: a dead process answers nothing
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self):
        with STATE.lock:
            STATE.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _drop(self, rst=False):
        """Ends the connection without (the rest of) an answer; with `rst`, a
        reset (SO_LINGER 0) instead of a FIN."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.rfile.close()  # its reference would keep the socket open
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _hold_hung(self, key):
        """Held until `key` ("hang" or "hang_health") is turned off or the model
        goes down (bounded at 60 s), then the connection is closed unanswered."""
        ev = threading.Event()
        with STATE.lock:
            STATE.hung.append((ev, key))
        ev.wait(60)
        with STATE.lock:
            STATE.hung = [x for x in STATE.hung if x[0] is not ev]
        self._drop()

    def _wait_release(self):
        ev = threading.Event()
        with STATE.lock:
            STATE.blocks.append(ev)
        ev.wait(30)
        with STATE.lock:
            if ev in STATE.blocks:
                STATE.blocks.remove(ev)

    def _emit(self, raw):
        """Writes a rendered answer (head and body), misbehaving as self.shape says."""
        shape = self.shape
        self.shape = ()
        w = self.wfile
        if "malformed" in shape:
            w.write(b"GARBAGE\x00\xff this is not HTTP\r\n\r\n")
            return self._drop()
        head, sep, body = raw.partition(b"\r\n\r\n")
        if "informational" in shape:
            w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            time.sleep(0.01)
            w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </hint.css>; rel=preload\r\n\r\n")
            time.sleep(0.01)
        if "wrong_content_length" in shape:
            lines = [ln if not ln.lower().startswith(b"content-length:")
                     else b"Content-Length: %d" % (len(body) + 16)
                     for ln in head.split(b"\r\n")]
            w.write(b"\r\n".join(lines) + sep + body)
            return self._drop()
        if "reset_mid_body" in shape or "stall_mid_body" in shape:
            half = len(body) // 2
            w.write(head + sep + body[:half])
            if "reset_mid_body" in shape:
                time.sleep(0.05)  # let the first half go out before the RST
                return self._drop(rst=True)
            self._wait_release()
            w.write(body[half:])
            return
        if "byte_by_byte" in shape:
            with STATE.lock:
                d = STATE.cfg.get("byte_delay_ms") or 0
            for i in range(len(raw)):
                w.write(raw[i:i + 1])
                if d:
                    time.sleep(d / 1000.0)
            return
        w.write(raw)

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype="application/json", headers=None):
        if self.shape:
            # Render into a buffer, then let _emit misbehave with the bytes.
            real, self.wfile = self.wfile, io.BytesIO()
            try:
                self._send_plain(status, body, ctype, headers)
                raw = self.wfile.getvalue()
            finally:
                self.wfile = real
            return self._emit(raw)
        return self._send_plain(status, body, ctype, headers)

    def _send_plain(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if STATE.cfg.get("hop_headers"):
            self.send_header("Connection", "X-Hop-Only")
            self.send_header("X-Hop-Only", "1")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method):
        body = self._body()
        path = self.path
        if STATE.down:
            return self._drop()
        if path in ("/v2/health/ready", "/v2/health/live"):
            with STATE.lock:
                hang = take_fault("hang_health")
            if hang:
                return self._hold_hung("hang_health")
            return self._send(200, {"ready": True})
        if path == "/_calls" and method == "GET":
            with STATE.lock:
                calls = list(STATE.calls)
            return self._send(200, calls)
        if path == "/_reset" and method == "POST":
            with STATE.lock:
                STATE.calls.clear()
            return self._send(200, {"ok": True})
        if path == "/_config" and method == "POST":
            try:
                cfg = json.loads(body or b"{}")
                for k in cfg:
                    if k not in STATE.cfg:
                        raise ValueError("unknown config key %r" % k)
                if cfg.get("force") not in (None, "json", "binary"):
                    raise ValueError("force must be json, binary or null")
                for k in FAULTS:
                    v = cfg.get(k, False)
                    if not isinstance(v, int) or v < 0:
                        raise ValueError("%s must be true, false or a count" % k)
                if not isinstance(cfg.get("byte_delay_ms", 0), (int, float)):
                    raise ValueError("byte_delay_ms must be a number")
            except ValueError as e:
                return self._send(400, {"error": str(e)})
            with STATE.lock:
                STATE.cfg.update(cfg)
                now = dict(STATE.cfg)
            release_hung()
            return self._send(200, now)
        if path == "/_state" and method == "GET":
            with STATE.lock:
                st = {"blocked": len(STATE.blocks), "inflight": STATE.inflight,
                      "calls": len(STATE.calls)}
            return self._send(200, st)
        if path == "/_block":
            ev = threading.Event()
            with STATE.lock:
                STATE.blocks.append(ev)
            released = ev.wait(30)
            with STATE.lock:
                if ev in STATE.blocks:
                    STATE.blocks.remove(ev)
            return self._send(200, {"released": released})
        if path == "/_release" and method == "POST":
            with STATE.lock:
                evs, STATE.blocks = STATE.blocks, []
            for ev in evs:
                ev.set()
            return self._send(200, {"released": len(evs)})

        with STATE.lock:
            if STATE.down:
                return self._drop()
            STATE.calls.append({"method": method, "path": path,
                                "headers": [[k, v] for k, v in self.headers.items()],
                                "body": base64.b64encode(body).decode()})
            cfg = dict(STATE.cfg)
            drop = cfg["drop_after_read"] > 0
            if drop:
                STATE.cfg["drop_after_read"] -= 1
            faults = set(k for k in FAULTS if k != "hang_health" and take_fault(k))
            crash = False
            if "crash_after_read" in faults:
                # A count counts calls: the crash comes with the Nth one.
                v = STATE.cfg["crash_after_read"]
                crash = v is True or v == 0
                if v is True:
                    STATE.cfg["crash_after_read"] = False
            STATE.inflight += 1
        if crash:
            with STATE.lock:
                STATE.inflight -= 1
            self.close_connection = True
            go_down()
            return
        if "hang" in faults:
            with STATE.lock:
                STATE.inflight -= 1
            return self._hold_hung("hang")
        if "hold" in faults:
            self._wait_release()
        cfg["_wrong_rows"] = "wrong_rows" in faults
        self.shape = tuple(faults & {"byte_by_byte", "malformed", "informational",
                                     "wrong_content_length", "reset_mid_body",
                                     "stall_mid_body"})
        if drop:
            with STATE.lock:
                STATE.inflight -= 1
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            if cfg["delay_ms"]:
                time.sleep(cfg["delay_ms"] / 1000.0)
            try:
                if path.startswith("/echo"):
                    out = body if method != "GET" else path.encode()
                    return self._send(200, out, "application/octet-stream")
                if method == "POST" and path.startswith("/v1/models/") and \
                        path.endswith(":predict"):
                    model = path[len("/v1/models/"):-len(":predict")]
                    ctype, hd, out = v1_answer(model, body, cfg["_wrong_rows"])
                elif method == "POST" and path.startswith("/v2/models/") and \
                        path.endswith("/infer"):
                    model = path[len("/v2/models/"):-len("/infer")]
                    ctype, hd, out = v2_answer(model, body,
                                               self.headers.get("Inference-Header-Content-Length"),
                                               cfg)
                else:
                    return self._send(404, {"error": "no such endpoint: %s %s" % (method, path)})
            except BadRequest as e:
                return self._send(400, {"error": str(e)})
            return self._send(200, out, ctype, hd)
        finally:
            with STATE.lock:
                STATE.inflight -= 1


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A peer (or a misbehaviour) that closed the connection is not news.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def pick_port(host):
    """A free port, bound explicitly by the server afterwards: a port given to
    bind() stays the socket's while it stops and starts listening again
    (crash_after_read and SIGUSR1), where one the kernel picked would not."""
    t = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((host, 0))
    return t, t.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    port, tmp = args.port, None
    if port == 0:
        tmp, port = pick_port(args.host)
    srv = Server((args.host, port), Handler)
    if tmp is not None:
        tmp.close()
    STATE.server = srv
    srv.timeout = 0.1

    def stop(signum, frame):
        raise SystemExit(0)

    def on_usr1(signum, frame):
        STATE.want_revive = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, on_usr1)
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        while True:
            if STATE.want_revive:
                revive()
            if STATE.down:
                time.sleep(0.05)
                continue
            srv.handle_request()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
