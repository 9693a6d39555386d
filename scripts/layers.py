#!/usr/bin/python3
"""scripts/layers.py: the layer checks of docs/testing.md ("Layer and cycle checks").

  layers.py includes [--root DIR]
      Every #include of gateway/, include/ and bench/ points at the same or a lower
      layer. Layers, bottom up: base=0, net=1, core=2 (core/config/ and core/codec/
      are core), proxy=3, bootstrap=3; proxy may not include bootstrap, bootstrap
      may not include net or proxy. gateway/main.c may include every layer, bench/
      base, net and core; tests/ is not checked. A quoted include that does not
      start with "infergate/" is a private header: in gateway/ it must name a file
      in the including file's own folder, and a public header (include/) may not
      include one. Lists each offending line; exits 1 on any.

  layers.py cycles --root DIR --build-root DIR [--allow FILE] LIB.a|OBJ.o...
      Builds the graph "translation unit a uses a symbol that translation unit b
      defines" from the objects (nm: undefined against defined global symbols) and
      fails on any cycle that uses an edge no cycle of the allowlist FILE has. The
      allowlist has one cycle a line, "a.c -> b.c -> a.c: reason" (names as printed
      by this check, paths relative to the source root); '#' starts a comment.
      Entries whose edges are gone are reported as stale (not an error).

  layers.py selftest
      Feeds both checks a bad include and a synthetic cycle (compiled with cc) and
      expects each refused, and the good cases accepted.

Exit status: 0 clean, 1 findings, 2 usage or tool error.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

RANK = {"base": 0, "net": 1, "core": 2, "proxy": 3, "bootstrap": 3}
EXTRA = {  # what a layer may include besides the rank rule, or instead of it
    "main": set(RANK),
    "bench": {"base", "net", "core"},
    "bootstrap": {"base", "core", "bootstrap"},
    "proxy": {"base", "net", "core", "proxy"},
}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
CHECKED_DIRS = ("gateway", "include", "bench")


def may_include(src, dst):
    if src in EXTRA:
        return dst in EXTRA[src]
    return dst in RANK and RANK[dst] <= RANK[src]


def layer_of(rel):
    """The layer of a file (path relative to the root), or None when unchecked."""
    parts = rel.split("/")
    if parts[0] == "bench":
        return "bench"
    if parts[0] == "gateway":
        if len(parts) == 2:
            return "main" if parts[1] == "main.c" else "?"
        return parts[1] if parts[1] in RANK else "?"
    if parts[0] == "include":
        if len(parts) >= 4 and parts[1] == "infergate" and parts[2] in RANK:
            return parts[2]
        return "?"
    return None


def check_includes(root):
    findings = []
    for top in CHECKED_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for fn in sorted(filenames):
                if not fn.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, fn)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                findings += check_file(root, rel)
    return findings


def check_file(root, rel):
    layer = layer_of(rel)
    if layer is None:
        return []
    if layer == "?":
        return [f"{rel}: not in a layer folder (gateway/<layer>/, include/infergate/<layer>/)"]
    out = []
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            kind, name = m.groups()
            text = line.strip()
            where = f"{rel}:{n}: {text}"
            if name.startswith("infergate/"):
                parts = name.split("/")
                dst = parts[1] if len(parts) >= 3 else None
                if dst not in RANK:
                    out.append(f"{where}: not a layer's header (infergate/<layer>/x.h)")
                elif not may_include(layer, dst):
                    out.append(f"{where}: {layer} may not include {dst}")
            elif kind == '"' and layer not in ("bench", "main"):
                if rel.startswith("include/"):
                    out.append(f"{where}: a public header includes a private header")
                elif "/" in name or not os.path.isfile(
                    os.path.join(root, os.path.dirname(rel), name)
                ):
                    out.append(
                        f"{where}: private header not in {os.path.dirname(rel)}/ "
                        "(only the same folder may include it)"
                    )
    return out


# ---- cycles between translation units ----------------------------------------------


def nm_symbols(path):
    """{member or object: (defined set, undefined set)} of one archive or object."""
    try:
        out = subprocess.run(
            ["nm", "-A", "-P", path], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"layers.py: nm {path} failed: {e}") from e
    syms = collections.defaultdict(lambda: (set(), set()))
    for line in out.splitlines():
        head, _, rest = line.rpartition(": ")
        fields = rest.split()
        if len(fields) < 2:
            continue
        name, typ = fields[0], fields[1]
        m = re.match(r"^(.*)\[(.*)\]$", head)
        member = m.group(2) if m else head
        if typ in ("U", "w", "v"):
            syms[member][1].add(name)
        elif typ.isupper() and typ != "N":
            syms[member][0].add(name)
    return syms


def tu_name(root, build_root, lib, member):
    """gateway/core/config/config.c for build/gateway/core/libig_core.a[..config_config.c.o]."""
    base = os.path.basename(member)
    stem = base[:-2] if base.endswith(".o") else base
    if build_root is None:
        return stem
    d = os.path.relpath(os.path.dirname(os.path.abspath(lib)), os.path.abspath(build_root))
    if lib.endswith(".o"):  # an object: its folder is the target's .p folder
        d = os.path.dirname(d)
    if d.startswith(".."):
        return stem
    srcdir = os.path.join(root, d)
    if stem.startswith("meson-generated_"):
        return f"{d}/{stem.split('_', 1)[1].lstrip('._')} (generated)"
    for dirpath, _, filenames in os.walk(srcdir):
        for fn in filenames:
            rel = os.path.relpath(os.path.join(dirpath, fn), srcdir).replace(os.sep, "/")
            if rel.replace("/", "_") == stem:
                return f"{d}/{rel}".replace(os.sep, "/")
    return f"{d}/{stem}"


def build_graph(root, build_root, inputs):
    defs = collections.defaultdict(set)
    undef = {}
    for lib in inputs:
        for member, (d, u) in nm_symbols(lib).items():
            tu = tu_name(root, build_root, lib, member)
            for s in d:
                defs[s].add(tu)
            undef.setdefault(tu, set()).update(u)
    edges = collections.defaultdict(dict)  # a -> {b: example symbol}
    for tu in undef:
        edges[tu]
    for s, tus in defs.items():
        for tu in tus:
            edges[tu]
    for a, syms in undef.items():
        for s in sorted(syms):
            for b in defs.get(s, ()):
                if b != a and b not in edges[a]:
                    edges[a][b] = s
    return edges


def sccs(edges):
    """Tarjan, iterative: {node: component id}."""
    index, low, comp, stack, on = {}, {}, {}, [], set()
    counter = [0]
    ncomp = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    return comp


def path_back(edges, comp, src, dst):
    """Shortest path src .. dst inside src's component (BFS)."""
    prev = {src: None}
    q = collections.deque([src])
    while q:
        v = q.popleft()
        if v == dst:
            break
        for w in sorted(edges[v]):
            if w not in prev and comp[w] == comp[src]:
                prev[w] = v
                q.append(w)
    out, v = [], dst
    while v is not None:
        out.append(v)
        v = prev[v]
    return out[::-1]


def canonical(cycle):
    """A cycle [a, b, c] (closing edge implied) rotated to start at its least node."""
    i = cycle.index(min(cycle))
    return tuple(cycle[i:] + cycle[:i])


def read_allowlist(path):
    cycles = []
    bad = []
    if path is None:
        return cycles, bad
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            spec, sep, reason = line.partition(": ")
            nodes = [p.strip() for p in spec.split("->")]
            if not sep or not reason.strip():
                bad.append(f"{path}:{n}: no reason (write 'a.c -> b.c -> a.c: why')")
            elif len(nodes) < 3 or nodes[0] != nodes[-1] or "" in nodes:
                bad.append(f"{path}:{n}: not a closed cycle 'a.c -> b.c -> a.c'")
            else:
                cycles.append((n, nodes))
    return cycles, bad


def check_cycles(root, build_root, inputs, allow_path):
    edges = build_graph(root, build_root, inputs)
    comp = sccs(edges)
    allowed, problems = read_allowlist(allow_path)
    allowed_edges = set()
    for _, nodes in allowed:
        allowed_edges.update(zip(nodes, nodes[1:]))
    found = {}  # canonical cycle -> list of nodes
    known = set()
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if comp[a] != comp[b]:
                continue
            cyc = canonical(path_back(edges, comp, b, a))
            if (a, b) in allowed_edges:
                known.add(cyc)
            else:
                found.setdefault(cyc, (a, b))

    def show(cyc):
        nodes = list(cyc) + [cyc[0]]
        hops = [f"{x} [{edges[x][y]}]" for x, y in zip(nodes, nodes[1:])]
        return " -> ".join(hops + [nodes[0]])

    rc = 0
    for p in problems:
        print(f"layers.py: {p}")
        rc = 1
    if found:
        print(
            f"layers.py: {len(found)} cycle(s) between translation units not in "
            f"{allow_path or 'an allowlist'} (a [symbol] -> b: a uses the symbol, b defines it):"
        )
        for cyc in sorted(found):
            print("  " + show(cyc))
        rc = 1
    for n, nodes in allowed:
        if not all(b in edges.get(a, {}) for a, b in zip(nodes, nodes[1:])):
            print(f"layers.py: note: {allow_path}:{n}: this cycle is gone, the line can go")
    ntu = len(edges)
    nedge = sum(len(v) for v in edges.values())
    print(
        f"layers.py: {ntu} translation units, {nedge} edges, "
        f"{len(known)} known cycle(s) still present, {len(found)} new"
    )
    return rc


# ---- self-test ------------------------------------------------------------------------


def run_self(args, **kw):
    p = subprocess.run(
        [sys.executable, os.path.abspath(__file__)] + args, capture_output=True, text=True, **kw
    )
    return p.returncode, p.stdout + p.stderr


def selftest():
    fails = []

    def expect(what, cond, out=""):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            fails.append(what)
            print("     " + out.replace("\n", "\n     "))

    with tempfile.TemporaryDirectory(prefix="ig-layers-") as tmp:
        files = {
            "include/infergate/base/a.h": "#include <stddef.h>\n",
            "include/infergate/net/n.h": '#include "infergate/base/a.h"\n',
            "include/infergate/core/c.h": '#include "infergate/proxy/p.h"\n',  # bad
            "include/infergate/proxy/p.h": '#include "p_int.h"\n',  # bad: private
            "gateway/base/a.c": '#include "infergate/net/n.h"\n',  # bad: upward
            "gateway/net/n.c": '#include "infergate/base/a.h"\n#include "n_int.h"\n',
            "gateway/net/n_int.h": "\n",
            "gateway/core/codec/x.c": '#include "n_int.h"\n',  # bad: other folder
            "gateway/core/config/y.c": '#include "infergate/net/n.h"\n',
            "gateway/proxy/p.c": '#include "infergate/bootstrap/b.h"\n',  # bad
            "gateway/bootstrap/b.c": '#include "infergate/core/c.h"\n'
            '  #  include "infergate/net/n.h"\n',  # bad: bootstrap -> net
            "gateway/main.c": '#include "infergate/proxy/p.h"\n'
            '#include "infergate/bootstrap/b.h"\n',
            "bench/x/m.c": '#include "infergate/core/c.h"\n#include "local.h"\n'
            '#include "infergate/proxy/p.h"\n',  # bad: bench -> proxy
            "tests/t.c": '#include "infergate/proxy/p.h"\n',
        }
        for rel, text in files.items():
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        rc, out = run_self(["includes", "--root", tmp])
        expect("includes: a tree with bad includes fails", rc == 1, out)
        bad = [
            "include/infergate/core/c.h:1:",
            "include/infergate/proxy/p.h:1:",
            "gateway/base/a.c:1:",
            "gateway/core/codec/x.c:1:",
            "gateway/proxy/p.c:1:",
            "gateway/bootstrap/b.c:2:",
            "bench/x/m.c:3:",
        ]
        for b in bad:
            expect(f"includes: reports {b}", b in out, out)
        good = ["include/infergate/net/n.h", "gateway/net/n.c", "gateway/core/config/y.c",
                "gateway/main.c", "bench/x/m.c:2:", "gateway/bootstrap/b.c:1:", "tests/t.c"]
        for g in good:
            expect(f"includes: accepts {g}", g not in out, out)
        expect("includes: one line per finding", out.count("\n") == len(bad) + 1, out)
        for b in bad:
            os.remove(os.path.join(tmp, b.split(":")[0]))
        rc, out = run_self(["includes", "--root", tmp])
        expect("includes: the tree without them passes", rc == 0, out)

        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "clang"
        srcs = {
            "a.c": "int b_f(void); int a_f(void) { return b_f(); }\n",
            "b.c": "int a_f(void); int b_f(void) { return a_f() + 1; }\n",
            "c.c": "int a_f(void); int c_f(void) { return a_f(); }\n",
            "a2.c": "int b_f(void); int c_f(void);\n"
            "int a_f(void) { return b_f() + c_f(); }\n",
        }
        for fn, text in srcs.items():
            with open(os.path.join(tmp, fn), "w") as f:
                f.write(text)
            subprocess.run([cc, "-c", fn, "-o", fn[:-2] + ".o"], cwd=tmp, check=True)
        allow = os.path.join(tmp, "allow.txt")
        with open(allow, "w") as f:
            f.write("# known\na -> b -> a: the synthetic cycle of the self-test\n")
        objs = [os.path.join(tmp, o) for o in ("a.o", "b.o", "c.o")]
        rc, out = run_self(["cycles", "--root", tmp] + objs)
        expect("cycles: a <-> b without an allowlist fails", rc == 1, out)
        expect("cycles: prints the cycle with its symbols",
               "a [b_f] -> b [a_f] -> a" in out, out)
        rc, out = run_self(["cycles", "--root", tmp, "--allow", allow] + objs)
        expect("cycles: the allowlisted cycle passes", rc == 0, out)
        objs2 = [os.path.join(tmp, o) for o in ("a2.o", "b.o", "c.o")]
        rc, out = run_self(["cycles", "--root", tmp, "--allow", allow] + objs2)
        expect("cycles: a new cycle a2 <-> c fails despite the allowlist",
               rc == 1 and "c_f" in out, out)
        rc, out = run_self(["cycles", "--root", tmp, "--allow", allow] + objs[1:])
        expect("cycles: an allowlist entry that is gone is a note, not a failure",
               rc == 0 and "is gone" in out, out)
        with open(allow, "w") as f:
            f.write("a -> b -> a\n")
        rc, out = run_self(["cycles", "--root", tmp, "--allow", allow] + objs)
        expect("cycles: an allowlist line without a reason fails", rc == 1, out)

    print(f"selftest: {'FAILED' if fails else 'passed'}")
    return 1 if fails else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("includes")
    p.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    p = sub.add_parser("cycles")
    p.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    p.add_argument("--build-root")
    p.add_argument("--allow")
    p.add_argument("inputs", nargs="+")
    sub.add_parser("selftest")
    a = ap.parse_args()
    if a.cmd == "includes":
        findings = check_includes(os.path.abspath(a.root))
        if findings:
            print("layers.py: includes against the layer order (docs/testing.md):")
            for f in findings:
                print("  " + f)
            return 1
        return 0
    if a.cmd == "cycles":
        return check_cycles(os.path.abspath(a.root), a.build_root, a.inputs, a.allow)
    return selftest()


if __name__ == "__main__":
    sys.exit(main())
