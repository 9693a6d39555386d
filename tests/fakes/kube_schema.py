"""Defaulting and validation for the fake Kubernetes API server.

A real API server fills in defaults (a Service's ClusterIP and port protocol,
a Deployment's strategy, a container's imagePullPolicy, ...) and rejects
objects that break its validation rules with 422 Invalid and a list of causes
naming each field.  This module reproduces the rules infergate's manifests can
run into, for ConfigMap, Service, ServiceAccount, Deployment,
PodDisruptionBudget (policy/v1), HorizontalPodAutoscaler (autoscaling/v2),
ScaledObject (keda.sh/v1alpha1) and Namespace.

It is deliberately not the full OpenAPI schema (tests/k8s-validate/ runs the
real schemas offline); it is the server-side part a client sees at run time.
"""

import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E|[eE][+-]?\d+)?$")


class Causes:
    def __init__(self):
        self.items = []

    def required(self, field, what="Required value"):
        self.items.append({"reason": "FieldValueRequired", "message": what, "field": field})

    def invalid(self, field, value, msg):
        self.items.append({"reason": "FieldValueInvalid",
                           "message": "Invalid value: %s: %s" % (_show(value), msg), "field": field})

    def type_(self, field, value, expected):
        self.items.append({"reason": "FieldValueTypeInvalid",
                           "message": "Invalid value: %s: must be %s" % (_show(value), expected), "field": field})

    def unsupported(self, field, value, allowed):
        self.items.append({"reason": "FieldValueNotSupported",
                           "message": "Unsupported value: %s: supported values: %s"
                           % (_show(value), ", ".join('"%s"' % a for a in allowed)), "field": field})

    def duplicate(self, field, value):
        self.items.append({"reason": "FieldValueDuplicate", "message": "Duplicate value: %s" % _show(value),
                           "field": field})

    def forbidden(self, field, msg):
        self.items.append({"reason": "FieldValueForbidden", "message": "Forbidden: " + msg, "field": field})


def _show(v):
    if isinstance(v, str):
        return '"%s"' % v
    return repr(v)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------
# Defaults


def apply_defaults(kind, obj, allocate_ip):
    spec = obj.get("spec")
    if kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if isinstance(strategy, dict) and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            ru = strategy.setdefault("rollingUpdate", {})
            if isinstance(ru, dict):
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
        tmpl = spec.get("template")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            pod = tmpl["spec"]
            pod.setdefault("restartPolicy", "Always")
            pod.setdefault("terminationGracePeriodSeconds", 30)
            pod.setdefault("dnsPolicy", "ClusterFirst")
            pod.setdefault("schedulerName", "default-scheduler")
            for c in list_of_dicts(pod.get("containers")) + list_of_dicts(pod.get("initContainers")):
                image = c.get("image")
                if isinstance(image, str):
                    tag = image.rsplit("/", 1)[-1]
                    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
                    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
                for p in list_of_dicts(c.get("ports")):
                    p.setdefault("protocol", "TCP")
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("type") != "ExternalName" and "clusterIP" not in spec:
            spec["clusterIP"] = allocate_ip()
        if spec.get("clusterIP") and spec.get("clusterIP") != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for p in list_of_dicts(spec.get("ports")):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
    elif kind == "HorizontalPodAutoscaler" and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)


def list_of_dicts(v):
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


# ---------------------------------------------------------------------------
# Validation


def validate(kind, obj, old):
    """Return the list of causes (empty when valid)."""
    c = Causes()
    md = obj.get("metadata")
    if not isinstance(md, dict):
        c.type_("metadata", md, "an object")
        return c.items
    name = md.get("name")
    if not name:
        c.required("metadata.name", "name or generateName is required")
    elif not isinstance(name, str):
        c.type_("metadata.name", name, "a string")
    else:
        if kind in ("Service", "Namespace"):
            if not DNS1035_LABEL.match(name) or len(name) > 63:
                c.invalid("metadata.name", name,
                          "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                          "start with an alphabetic character, and end with an alphanumeric character")
        elif not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
            c.invalid("metadata.name", name,
                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                      "'-' or '.', and must start and end with an alphanumeric character")
    check_labels(c, "metadata.labels", md.get("labels"))
    ann = md.get("annotations")
    if ann is not None and (not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values())):
        c.type_("metadata.annotations", ann, "a map of string to string")
    checker = {
        "ConfigMap": check_configmap,
        "Service": check_service,
        "Deployment": check_deployment,
        "ServiceAccount": check_serviceaccount,
        "PodDisruptionBudget": check_pdb,
        "HorizontalPodAutoscaler": check_hpa,
        "ScaledObject": check_scaledobject,
    }.get(kind)
    if checker is not None:
        checker(c, obj, old)
    return c.items


def check_labels(c, field, labels):
    if labels is None:
        return
    if not isinstance(labels, dict):
        c.type_(field, labels, "a map of string to string")
        return
    for k, v in labels.items():
        key_name = k.split("/", 1)[-1]
        if not QUALIFIED_NAME.match(key_name) or len(key_name) > 63:
            c.invalid(field, k, "name part must consist of alphanumeric characters, '-', '_' or '.'")
        if not isinstance(v, str):
            c.type_("%s.%s" % (field, k), v, "a string")
        elif not LABEL_VALUE.match(v) or len(v) > 63:
            c.invalid(field, v, "a valid label must be an empty string or consist of alphanumeric characters, "
                                "'-', '_' or '.', and must start and end with an alphanumeric character")


def check_configmap(c, obj, old):
    for section in ("data", "binaryData"):
        d = obj.get(section)
        if d is None:
            continue
        if not isinstance(d, dict):
            c.type_(section, d, "a map of string to string")
            continue
        for k, v in d.items():
            if not CONFIGMAP_KEY.match(k) or len(k) > 253:
                c.invalid(section, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
            if not isinstance(v, str):
                c.type_("%s[%s]" % (section, k), v, "a string")


def check_ports_value(c, field, v):
    if not is_int(v):
        c.type_(field, v, "an integer")
    elif not 1 <= v <= 65535:
        c.invalid(field, v, "must be between 1 and 65535, inclusive")


def check_service(c, obj, old):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        c.required("spec")
        return
    stype = spec.get("type", "ClusterIP")
    allowed = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
    if stype not in allowed:
        c.unsupported("spec.type", stype, allowed)
    ports = spec.get("ports")
    if ports is None:
        if stype != "ExternalName" and spec.get("clusterIP") != "None":
            c.required("spec.ports")
    elif not isinstance(ports, list):
        c.type_("spec.ports", ports, "a list")
    else:
        if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
            c.required("spec.ports")
        names = set()
        for i, p in enumerate(ports):
            f = "spec.ports[%d]" % i
            if not isinstance(p, dict):
                c.type_(f, p, "an object")
                continue
            if "port" not in p:
                c.required(f + ".port")
            else:
                check_ports_value(c, f + ".port", p["port"])
            if len(ports) > 1 and not p.get("name"):
                c.required(f + ".name")
            if p.get("name"):
                if p["name"] in names:
                    c.duplicate(f + ".name", p["name"])
                names.add(p["name"])
            tp = p.get("targetPort")
            if tp is not None and not isinstance(tp, str):
                check_ports_value(c, f + ".targetPort", tp)
            proto = p.get("protocol", "TCP")
            if proto not in ("TCP", "UDP", "SCTP"):
                c.unsupported(f + ".protocol", proto, ["SCTP", "TCP", "UDP"])
    sel = spec.get("selector")
    if sel is not None:
        check_labels(c, "spec.selector", sel)
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") != old_ip:
            c.invalid("spec.clusterIP", spec.get("clusterIP"), "field is immutable")


def selector_matches(sel, labels):
    """matchLabels and matchExpressions against a label map."""
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return False
        op, key, vals = e.get("operator"), e.get("key"), e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_selector(c, field, sel):
    if not isinstance(sel, dict):
        c.type_(field, sel, "an object")
        return False
    ok = True
    unknown = set(sel) - {"matchLabels", "matchExpressions"}
    for k in sorted(unknown):
        c.invalid(field, k, "unknown field in a label selector")
        ok = False
    if "matchLabels" in sel:
        check_labels(c, field + ".matchLabels", sel["matchLabels"])
        ok = ok and isinstance(sel["matchLabels"], dict)
    exprs = sel.get("matchExpressions")
    if exprs is not None:
        if not isinstance(exprs, list):
            c.type_(field + ".matchExpressions", exprs, "a list")
            return False
        for i, e in enumerate(exprs):
            f = "%s.matchExpressions[%d]" % (field, i)
            if not isinstance(e, dict):
                c.type_(f, e, "an object")
                ok = False
                continue
            op = e.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                c.unsupported(f + ".operator", op, ["DoesNotExist", "Exists", "In", "NotIn"])
                ok = False
            elif op in ("In", "NotIn") and not e.get("values"):
                c.required(f + ".values", "must be specified when `operator` is 'In' or 'NotIn'")
                ok = False
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        c.invalid(field, sel, "empty selector is invalid for deployment")
        ok = False
    return ok


def check_container(c, f, ct, names):
    if not isinstance(ct, dict):
        c.type_(f, ct, "an object")
        return
    name = ct.get("name")
    if not name:
        c.required(f + ".name")
    elif not isinstance(name, str) or not DNS1123_LABEL.match(name) or len(name) > 63:
        c.invalid(f + ".name", name, "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                                     "characters or '-'")
    elif name in names:
        c.duplicate(f + ".name", name)
    else:
        names.add(name)
    image = ct.get("image")
    if not image:
        c.required(f + ".image")
    elif not isinstance(image, str) or image != image.strip():
        c.invalid(f + ".image", image, "must be a string without leading or trailing whitespace")
    for key in ("args", "command"):
        v = ct.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            c.type_("%s.%s" % (f, key), v, "a list of strings")
    ports = ct.get("ports")
    if ports is not None:
        if not isinstance(ports, list):
            c.type_(f + ".ports", ports, "a list")
        else:
            for j, p in enumerate(ports):
                pf = "%s.ports[%d]" % (f, j)
                if not isinstance(p, dict):
                    c.type_(pf, p, "an object")
                elif "containerPort" not in p:
                    c.required(pf + ".containerPort")
                else:
                    check_ports_value(c, pf + ".containerPort", p["containerPort"])
    env = ct.get("env")
    if env is not None:
        if not isinstance(env, list):
            c.type_(f + ".env", env, "a list")
        else:
            for j, e in enumerate(env):
                ef = "%s.env[%d]" % (f, j)
                if not isinstance(e, dict) or not e.get("name"):
                    c.required(ef + ".name")
                elif "value" in e and not isinstance(e["value"], str):
                    c.type_(ef + ".value", e["value"], "a string")
    res = ct.get("resources")
    if isinstance(res, dict):
        for section in ("limits", "requests"):
            for k, v in (res.get(section) or {}).items():
                if not isinstance(v, (str, int, float)) or isinstance(v, bool) or not QUANTITY.match(str(v)):
                    c.invalid("%s.resources.%s[%s]" % (f, section, k), v, "must be a quantity")


def check_deployment(c, obj, old):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        c.required("spec")
        return
    replicas = spec.get("replicas")
    if replicas is not None and (not is_int(replicas) or replicas < 0):
        c.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    sel = spec.get("selector")
    sel_ok = False
    if sel is None:
        c.required("spec.selector")
    else:
        sel_ok = check_selector(c, "spec.selector", sel)
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        c.required("spec.template")
        return
    tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
    check_labels(c, "spec.template.metadata.labels", tlabels)
    if sel_ok and isinstance(tlabels, dict) and not selector_matches(sel, tlabels):
        c.invalid("spec.template.metadata.labels", tlabels, "`selector` does not match template `labels`")
    pod = tmpl.get("spec")
    if not isinstance(pod, dict):
        c.required("spec.template.spec")
    else:
        containers = pod.get("containers")
        if containers is None or containers == []:
            c.required("spec.template.spec.containers")
        elif not isinstance(containers, list):
            c.type_("spec.template.spec.containers", containers, "a list")
        else:
            names = set()
            for i, ct in enumerate(containers):
                check_container(c, "spec.template.spec.containers[%d]" % i, ct, names)
        inits = pod.get("initContainers")
        if inits is not None:
            if not isinstance(inits, list):
                c.type_("spec.template.spec.initContainers", inits, "a list")
            else:
                for i, ct in enumerate(inits):
                    check_container(c, "spec.template.spec.initContainers[%d]" % i, ct, set())
    strategy = spec.get("strategy")
    if isinstance(strategy, dict) and strategy.get("type") not in (None, "RollingUpdate", "Recreate"):
        c.unsupported("spec.strategy.type", strategy.get("type"), ["Recreate", "RollingUpdate"])
    if old is not None and isinstance(old.get("spec"), dict) and sel is not None:
        if old["spec"].get("selector") != sel:
            c.invalid("spec.selector", sel, "field is immutable")


def check_serviceaccount(c, obj, old):
    auto = obj.get("automountServiceAccountToken")
    if auto is not None and not isinstance(auto, bool):
        c.type_("automountServiceAccountToken", auto, "a boolean")
    for key in ("secrets", "imagePullSecrets"):
        refs = obj.get(key)
        if refs is None:
            continue
        if not isinstance(refs, list):
            c.type_(key, refs, "a list")
            continue
        for i, r in enumerate(refs):
            if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not r.get("name"):
                c.required("%s[%d].name" % (key, i))


PERCENT = re.compile(r"^(\d+)%$")


def check_int_or_percent(c, field, v):
    """An IntOrString budget: an integer >= 0 or "N%" with 0 <= N <= 100."""
    if is_int(v):
        if v < 0:
            c.invalid(field, v, "must be greater than or equal to 0")
        return
    if isinstance(v, str):
        m = PERCENT.match(v)
        if not m:
            c.invalid(field, v, "a valid percent string must be a numeric string followed by an ending '%' "
                                "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
        elif int(m.group(1)) > 100:
            c.invalid(field, v, "must not be greater than 100%")
        return
    c.type_(field, v, "an integer or a percent string")


def check_pdb(c, obj, old):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        c.required("spec")
        return
    has_min, has_max = "minAvailable" in spec, "maxUnavailable" in spec
    if has_min and has_max:
        c.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
    for k in ("minAvailable", "maxUnavailable"):
        if k in spec:
            check_int_or_percent(c, "spec." + k, spec[k])
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("IfHealthyBudget", "AlwaysAllow"):
        c.unsupported("spec.unhealthyPodEvictionPolicy", policy, ["AlwaysAllow", "IfHealthyBudget"])
    sel = spec.get("selector")
    if sel is not None:
        if not isinstance(sel, dict):
            c.type_("spec.selector", sel, "an object")
        elif sel.get("matchLabels") or sel.get("matchExpressions") or set(sel) - {"matchLabels",
                                                                                  "matchExpressions"}:
            # policy/v1: an empty selector selects every pod of the namespace.
            check_selector(c, "spec.selector", sel)


METRIC_SOURCES = {
    "Resource": "resource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
    "ContainerResource": "containerResource",
}
TARGET_FIELDS = {"Utilization": "averageUtilization", "Value": "value", "AverageValue": "averageValue"}


def check_metric_target(c, f, target, allowed):
    if not isinstance(target, dict):
        c.required(f)
        return
    ttype = target.get("type")
    if ttype not in TARGET_FIELDS:
        c.unsupported(f + ".type", ttype, sorted(TARGET_FIELDS))
        return
    if ttype not in allowed:
        c.invalid(f + ".type", ttype, "must be one of %s for this metric source" % ", ".join(allowed))
    field = TARGET_FIELDS[ttype]
    v = target.get(field)
    if v is None:
        c.required("%s.%s" % (f, field), "must set %s when type is %s" % (field, ttype))
    elif ttype == "Utilization":
        if not is_int(v) or v < 1:
            c.invalid("%s.%s" % (f, field), v, "must be greater than 0")
    elif not QUANTITY.match(str(v)) or isinstance(v, bool):
        c.invalid("%s.%s" % (f, field), v, "must be a quantity")


def check_hpa(c, obj, old):
    if obj.get("apiVersion") != "autoscaling/v2":
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        c.required("spec")
        return
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict):
        c.required("spec.scaleTargetRef")
    else:
        for k in ("kind", "name"):
            if not ref.get(k):
                c.required("spec.scaleTargetRef." + k)
    mx = spec.get("maxReplicas")
    mn = spec.get("minReplicas", 1)
    if mx is None:
        c.required("spec.maxReplicas")
    elif not is_int(mx) or mx < 1:
        c.invalid("spec.maxReplicas", mx, "must be greater than or equal to 1")
    if not is_int(mn) or mn < 1:
        c.invalid("spec.minReplicas", mn, "must be greater than or equal to 1")
    elif is_int(mx) and mn > mx:
        c.invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`")
    metrics = spec.get("metrics")
    if metrics is None:
        return
    if not isinstance(metrics, list):
        c.type_("spec.metrics", metrics, "a list")
        return
    for i, m in enumerate(metrics):
        f = "spec.metrics[%d]" % i
        if not isinstance(m, dict):
            c.type_(f, m, "an object")
            continue
        mtype = m.get("type")
        if mtype not in METRIC_SOURCES:
            c.unsupported(f + ".type", mtype, sorted(METRIC_SOURCES))
            continue
        member = METRIC_SOURCES[mtype]
        for other_type, other in METRIC_SOURCES.items():
            if other != member and other in m:
                c.forbidden("%s.%s" % (f, other), "must populate the given metric source only")
        src = m.get(member)
        sf = "%s.%s" % (f, member)
        if not isinstance(src, dict):
            c.required(sf, "must populate information for the given metric source")
            continue
        if mtype in ("Resource", "ContainerResource"):
            if not src.get("name"):
                c.required(sf + ".name")
            if mtype == "ContainerResource" and not src.get("container"):
                c.required(sf + ".container")
            check_metric_target(c, sf + ".target", src.get("target"), ["Utilization", "AverageValue"])
        else:
            metric = src.get("metric")
            if not isinstance(metric, dict) or not metric.get("name"):
                c.required(sf + ".metric.name")
            if mtype == "Object":
                dot = src.get("describedObject")
                if not isinstance(dot, dict) or not dot.get("kind") or not dot.get("name"):
                    c.required(sf + ".describedObject")
                check_metric_target(c, sf + ".target", src.get("target"), ["Value", "AverageValue"])
            elif mtype == "Pods":
                check_metric_target(c, sf + ".target", src.get("target"), ["AverageValue"])
            else:
                check_metric_target(c, sf + ".target", src.get("target"), ["Value", "AverageValue"])


def check_scaledobject(c, obj, old):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        c.required("spec")
        return
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        c.required("spec.scaleTargetRef.name")
    for k in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        v = spec.get(k)
        if v is not None and (not is_int(v) or v < 0):
            c.invalid("spec." + k, v, "must be a non-negative integer")
    mn, mx = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
    if is_int(mn) and is_int(mx) and mn > mx:
        c.invalid("spec.minReplicaCount", mn, "must be less than or equal to maxReplicaCount")
    triggers = spec.get("triggers")
    if not isinstance(triggers, list) or not triggers:
        c.required("spec.triggers", "at least one trigger is required")
        return
    for i, t in enumerate(triggers):
        f = "spec.triggers[%d]" % i
        if not isinstance(t, dict):
            c.type_(f, t, "an object")
            continue
        if not t.get("type"):
            c.required(f + ".type")
        md = t.get("metadata")
        if not isinstance(md, dict):
            c.required(f + ".metadata")
        elif not all(isinstance(v, str) for v in md.values()):
            c.type_(f + ".metadata", md, "a map of string to string")
