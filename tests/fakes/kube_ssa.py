"""Field sets, merges and patches for the fake Kubernetes API server.

Server-side apply tracks, per field manager, the set of fields it owns.  Here a
field is a path in the "FieldsV1" vocabulary the real API server uses in
metadata.managedFields: "f:<key>" steps into a map, 'k:{"name":"app"}' selects
the item of an associative list (containers by name, env by name, ports by
port number, ...).  Other lists are atomic: the whole list is one field.

This module knows nothing about HTTP or resource kinds.  It provides:
flatten() (object -> {path: leaf value}), get/set/remove of a path,
fields_v1() to render a path set like managedFields, and the three PATCH
dialects (JSON merge patch, a strategic merge patch for associative lists,
and RFC 6902 JSON patch).
"""

import copy
import json

MISSING = object()


class _Item:
    """Value recorded for an associative list item itself (FieldsV1 "."): owning
    the item means its removal takes the whole item, defaulted fields included."""

    def __repr__(self):
        return "ITEM"


ITEM = _Item()

# List fields merged by key (as the real API's strategic-merge / SSA schema
# does for these); every other list is atomic.
ASSOC_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),
}


class FieldError(Exception):
    """The object cannot be represented as a field set (e.g. duplicate list keys)."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


class PatchError(Exception):
    """A patch document is malformed or does not apply."""


def list_key(field_name, item):
    """The associative key for an item of list `field_name`, or None (atomic)."""
    names = ASSOC_KEYS.get(field_name)
    if not names or not isinstance(item, dict):
        return None
    for n in names:
        if n in item and item[n] is not None:
            return n
    return None


def key_step(name, value):
    return "k:" + json.dumps({name: value}, separators=(",", ":"), sort_keys=True)


def is_assoc(field_name, items):
    return (
        isinstance(items, list)
        and len(items) > 0
        and all(list_key(field_name, it) is not None for it in items)
    )


def flatten(node, prefix=(), out=None, dotted=""):
    """Map every leaf of `node` to its value; maps/assoc lists recurse, the rest are leaves."""
    if out is None:
        out = {}
    if isinstance(node, dict):
        if not node and prefix:
            out[prefix] = {}
        for k, v in node.items():
            if v is None:
                continue
            flatten(v, prefix + ("f:" + k,), out, dotted + "." + k)
        return out
    field_name = prefix[-1][2:] if prefix and prefix[-1].startswith("f:") else ""
    if is_assoc(field_name, node):
        seen = set()
        for item in node:
            kname = list_key(field_name, item)
            step = key_step(kname, item[kname])
            if step in seen:
                raise FieldError(dotted, "duplicate entries for key [%s=%s]" % (kname, json.dumps(item[kname])))
            seen.add(step)
            out[prefix + (step,)] = ITEM
            flatten(item, prefix + (step,), out, "%s[%s=%s]" % (dotted, kname, item[kname]))
        return out
    out[prefix] = node
    return out


def dotted_path(path):
    """Human form of a path: .spec.template.spec.containers[name="app"].image"""
    s = ""
    for step in path:
        if step.startswith("f:"):
            s += "." + step[2:]
        else:
            kv = json.loads(step[2:])
            (k, v), = kv.items()
            s += "[%s=%s]" % (k, json.dumps(v))
    return s


def _find_item(items, step):
    kv = json.loads(step[2:])
    (k, v), = kv.items()
    for i, it in enumerate(items):
        if isinstance(it, dict) and it.get(k) == v:
            return i
    return None


def get_path(obj, path):
    cur = obj
    for step in path:
        if step.startswith("f:"):
            if not isinstance(cur, dict) or step[2:] not in cur:
                return MISSING
            cur = cur[step[2:]]
        else:
            if not isinstance(cur, list):
                return MISSING
            i = _find_item(cur, step)
            if i is None:
                return MISSING
            cur = cur[i]
    return cur


def set_path(obj, path, value):
    cur = obj
    for n, step in enumerate(path):
        last = n == len(path) - 1
        nxt = path[n + 1] if not last else None
        if step.startswith("f:"):
            key = step[2:]
            if last:
                cur[key] = copy.deepcopy(value)
                return
            want_list = nxt.startswith("k:")
            child = cur.get(key)
            if want_list and not isinstance(child, list):
                child = cur[key] = []
            elif not want_list and not isinstance(child, dict):
                child = cur[key] = {}
            cur = child
        else:
            i = _find_item(cur, step)
            if i is None:
                kv = json.loads(step[2:])
                cur.append(dict(kv))
                i = len(cur) - 1
            if last:
                if value is not ITEM:
                    cur[i] = copy.deepcopy(value)
                return
            cur = cur[i]


def remove_path(obj, path):
    """Remove a leaf and prune what became empty because of it.

    Maps and lists left empty are removed, and so is an associative list item
    left holding nothing but its key.  The key field of an item is never
    removed on its own (the item would become unaddressable); the item goes
    when its last other field does.
    """
    trail = []  # (container, step) pairs from the root down to the leaf
    cur = obj
    for step in path:
        if step.startswith("f:"):
            if not isinstance(cur, dict) or step[2:] not in cur:
                return
            trail.append((cur, step))
            cur = cur[step[2:]]
        else:
            if not isinstance(cur, list):
                return
            i = _find_item(cur, step)
            if i is None:
                return
            trail.append((cur, step))
            cur = cur[i]
    for depth in range(len(trail) - 1, -1, -1):
        parent, step = trail[depth]
        if depth == len(trail) - 1:
            if depth > 0 and trail[depth - 1][1].startswith("k:") and _item_key(trail[depth - 1][1]) == step[2:]:
                continue
            _delete(parent, step)
            continue
        if _is_empty(_child(parent, step), step):
            _delete(parent, step)
        else:
            break


def _item_key(step):
    (k, _v), = json.loads(step[2:]).items()
    return k


def _child(parent, step):
    if step.startswith("f:"):
        return parent[step[2:]]
    return parent[_find_item(parent, step)]


def _delete(parent, step):
    if step.startswith("f:"):
        del parent[step[2:]]
    else:
        del parent[_find_item(parent, step)]


def _is_empty(child, step):
    if child in ({}, []):
        return True
    return step.startswith("k:") and isinstance(child, dict) and set(child) <= {_item_key(step)}


def fields_v1(paths):
    """Render a set of paths as a FieldsV1 tree, as in metadata.managedFields."""
    root = {}
    for path in sorted(paths):
        cur = root
        for step in path:
            cur = cur.setdefault(step, {})
            if step.startswith("k:"):
                cur.setdefault(".", {})
    return root


# ---------------------------------------------------------------------------
# PATCH dialects


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge_patch(target, patch, field_name=""):
    """Merge patch that merges associative lists by key instead of replacing them."""
    if isinstance(patch, dict):
        for k in patch:
            if k.startswith("$"):
                raise PatchError("strategic merge directive %s is not supported by the fake" % k)
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = strategic_merge_patch(out.get(k), v, k)
        return out
    if isinstance(patch, list) and is_assoc(field_name, patch) and isinstance(target, list):
        out = copy.deepcopy(target)
        for item in patch:
            kname = list_key(field_name, item)
            i = _find_item(out, key_step(kname, item[kname]))
            if i is None:
                out.append(copy.deepcopy(item))
            else:
                out[i] = strategic_merge_patch(out[i], item, "")
        return out
    return copy.deepcopy(patch)


def _pointer(ptr):
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise PatchError("JSON pointer %r must start with '/'" % ptr)
    return [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]


def _parent(doc, parts, ptr):
    return _get(doc, parts[:-1], ptr)


def json_patch(doc, ops):
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("operation %d needs 'op' and 'path'" % n)
        kind = op["op"]
        parts = _pointer(op["path"])
        if kind in ("move", "copy"):
            src_parts = _pointer(op.get("from", ""))
            src = _get(doc, src_parts, op.get("from"))
            if kind == "move":
                doc = _remove(doc, src_parts, op.get("from"))
            doc = _add(doc, parts, op["path"], copy.deepcopy(src))
        elif kind == "add":
            if "value" not in op:
                raise PatchError("operation %d (add) needs 'value'" % n)
            doc = _add(doc, parts, op["path"], copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, parts, op["path"])
        elif kind == "replace":
            if "value" not in op:
                raise PatchError("operation %d (replace) needs 'value'" % n)
            doc = _remove(doc, parts, op["path"])
            doc = _add(doc, parts, op["path"], copy.deepcopy(op["value"]))
        elif kind == "test":
            if _get(doc, parts, op["path"]) != op.get("value"):
                raise PatchError("test operation %d failed at %s" % (n, op["path"]))
        else:
            raise PatchError("unknown JSON patch operation %r" % kind)
    return doc


def _get(doc, parts, ptr):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError("path %s does not exist" % ptr)
    return cur


def _add(doc, parts, ptr, value):
    if not parts:
        return value
    parent = _parent(doc, parts, ptr)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError("index %s out of range at %s" % (last, ptr))
    else:
        raise PatchError("cannot add at %s" % ptr)
    return doc


def _remove(doc, parts, ptr):
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts, ptr)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError("path %s does not exist" % ptr)
    return doc
