"""Patch formats: JSON merge patch (RFC 7386), a strategic merge, JSON patch (RFC 6902) and apply."""

import copy
import json

from .errors import ApiError, bad_request, unsupported_media_type

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

# List fields whose items merge by a key other than `name` (the real schemas' patchMergeKey).
MERGE_KEYS = {"ports": ("containerPort", "port"), "volumeMounts": ("mountPath",), "conditions": ("type",),
              "volumeDevices": ("devicePath",), "hostAliases": ("ip",)}


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field, items):
    for key in MERGE_KEYS.get(field, ("name",)):
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _merge_list(field, target, patch):
    """Lists of objects merge by their merge key (`$patch: delete` removes); other lists are replaced."""
    items = [i for i in patch if not (isinstance(i, dict) and set(i) == {"$patch"})]
    key = _merge_key(field, items)
    if key is None or not isinstance(target, list) or not all(isinstance(i, dict) for i in target):
        return [strategic_merge(None, i) if isinstance(i, dict) else i for i in items]
    result = copy.deepcopy(target)
    for item in items:
        index = next((n for n, t in enumerate(result) if t.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge(None, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(target, patch, field=None):
    """A strategic merge patch, as far as the emulator's schemas go: a merge patch whose lists of
    named objects (containers, env, volumes, ...) merge by name, with `$patch: delete|replace`."""
    if isinstance(patch, list):
        return _merge_list(field, target, patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) and directive != "replace" else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and value.get("$patch") == "delete":
            result.pop(key, None)
        else:
            result[key] = strategic_merge(result.get(key), value, key)
    return result


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, tokens, path):
    for token in tokens:
        try:
            doc = doc[int(token)] if isinstance(doc, list) else doc[token]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, f"doc is missing path: \"{path}\": missing value") from None
    return doc


def _index(parent, token, path, adding):
    if token == "-" and adding:
        return len(parent)
    try:
        index = int(token)
    except ValueError:
        raise ApiError(422, f"invalid array index {token!r} in \"{path}\"") from None
    if not 0 <= index <= len(parent) - (0 if adding else 1):
        raise ApiError(422, f"doc is missing path: \"{path}\": missing value")
    return index


def _remove(doc, path):
    tokens = _pointer(path)
    if not tokens:
        raise ApiError(422, "cannot remove the whole document")
    parent = _walk(doc, tokens[:-1], path)
    if isinstance(parent, list):
        return parent.pop(_index(parent, tokens[-1], path, False))
    if not isinstance(parent, dict) or tokens[-1] not in parent:
        raise ApiError(422, f"doc is missing path: \"{path}\": missing value")
    return parent.pop(tokens[-1])


def _add(doc, path, value, replace=False):
    tokens = _pointer(path)
    if not tokens:
        return copy.deepcopy(value)
    parent = _walk(doc, tokens[:-1], path)
    if isinstance(parent, list):
        index = _index(parent, tokens[-1], path, not replace)
        if replace:
            parent[index] = copy.deepcopy(value)
        else:
            parent.insert(index, copy.deepcopy(value))
    elif isinstance(parent, dict):
        if replace and tokens[-1] not in parent:
            raise ApiError(422, f"doc is missing key: {path}: missing value")
        parent[tokens[-1]] = copy.deepcopy(value)
    else:
        raise ApiError(422, f"doc is missing path: \"{path}\": missing value")
    return doc


def json_patch(target, operations):
    """RFC 6902 add/remove/replace/move/copy/test; any failure is a 422 like the real server."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise ApiError(422, f"Unexpected kind: missing value for {kind} operation")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, op["value"], replace=True)
        elif kind in ("move", "copy"):
            source = op.get("from", "")
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_walk(doc, _pointer(source), source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op["value"]:
                raise ApiError(422, f"testing value {path} failed: test failed")
        else:
            raise ApiError(422, f"Unexpected kind: {kind}")
    return doc


def parse_body(content_type, raw):
    """The patch document of a request body, JSON or (for apply) YAML."""
    text = raw.decode("utf-8") if raw else ""
    try:
        return json.loads(text)
    except ValueError:
        if content_type != APPLY:
            raise bad_request("error decoding patch: invalid JSON") from None
    try:
        import yaml
    except ImportError:
        raise bad_request("apply patches in YAML need PyYAML in the emulator; send JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise bad_request(f"error decoding YAML: {e}") from None


def apply_patch(content_type, target, patch):
    """`target` with `patch` applied in the format of `content_type` (apply merges strategically)."""
    if content_type == MERGE:
        if not isinstance(patch, dict):
            raise bad_request("merge patch must be a JSON object")
        return merge_patch(target, patch)
    if content_type in (STRATEGIC, APPLY):
        if not isinstance(patch, dict):
            raise bad_request("patch must be a JSON object")
        return strategic_merge(target, patch)
    if content_type == JSON_PATCH:
        return json_patch(target, patch)
    raise unsupported_media_type(content_type)


def normalize_content_type(header):
    """The media type of a Content-Type header, without parameters."""
    return (header or "").split(";")[0].strip().lower()
