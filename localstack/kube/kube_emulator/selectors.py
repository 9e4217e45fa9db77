"""Label and field selectors: parsing the query-string forms and matching objects against them."""

import re

from .errors import bad_request

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")
FIELDS = ("metadata.name", "metadata.namespace")


def _split_top_level(text):
    """Splits on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_labels(text):
    """Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h` into (key, op, values) requirements."""
    requirements = []
    for part in _split_top_level(text or ""):
        if m := _SET.match(part):
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            requirements.append((m.group(1), m.group(2), values))
        elif m := _EQUALITY.match(part):
            op = "!=" if m.group(2) == "!=" else "="
            requirements.append((m.group(1), op, {m.group(3)}))
        elif m := _EXISTS.match(part):
            requirements.append((m.group(2), "!" if m.group(1) else "exists", set()))
        else:
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
    return requirements


def from_label_selector(selector):
    """Requirements of a LabelSelector object (`matchLabels`, `matchExpressions`)."""
    selector = selector or {}
    requirements = [(k, "=", {v}) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        requirements.append((expr["key"], ops[expr["operator"]], set(expr.get("values") or [])))
    return requirements


def format_labels(requirements):
    """The query-string form of requirements, e.g. `app=web,tier in (a,b)`."""
    out = []
    for key, op, values in requirements:
        if op in ("=", "!="):
            out.append(f"{key}{op}{next(iter(values))}")
        elif op in ("in", "notin"):
            out.append(f"{key} {op} ({','.join(sorted(values))})")
        else:
            out.append(key if op == "exists" else f"!{key}")
    return ",".join(out)


def labels_match(requirements, labels):
    """Whether a label map satisfies every requirement."""
    labels = labels or {}
    for key, op, values in requirements:
        present, value = key in labels, labels.get(key)
        ok = {"=": present and value in values, "!=": not present or value not in values,
              "in": present and value in values, "notin": not present or value not in values,
              "exists": present, "!": not present}[op]
        if not ok:
            return False
    return True


def parse_fields(text):
    """Parses `metadata.name=x,metadata.namespace!=y`; other fields are a 400 like the real server."""
    requirements = []
    for part in _split_top_level(text or ""):
        m = _EQUALITY.match(part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part.strip()}'")
        if m.group(1) not in FIELDS:
            raise bad_request(f'field label not supported: {m.group(1)}')
        requirements.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return requirements


def fields_match(requirements, obj):
    """Whether an object satisfies every field requirement."""
    meta = obj.get("metadata") or {}
    for field, op, value in requirements:
        actual = meta.get(field.split(".", 1)[1]) or ""
        if (actual == value) != (op == "="):
            return False
    return True


class Selector:
    """A label selector and a field selector from a request's query string."""

    def __init__(self, label_text=None, field_text=None):
        self.labels = parse_labels(label_text)
        self.fields = parse_fields(field_text)

    def matches(self, obj):
        """Whether `obj` (or None, which never matches) is selected."""
        if obj is None:
            return False
        return labels_match(self.labels, (obj.get("metadata") or {}).get("labels")) and fields_match(self.fields, obj)
