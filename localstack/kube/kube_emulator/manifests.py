"""Reading seed manifests: multi-document YAML (with PyYAML), or JSON objects, lists and `kind: List`."""

import json


def _flatten(doc):
    if doc is None:
        return []
    if isinstance(doc, list):
        return [o for item in doc for o in _flatten(item)]
    if not isinstance(doc, dict):
        raise ValueError(f"a manifest must be an object, not {type(doc).__name__}")
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        return [o for item in doc["items"] for o in _flatten(item)]
    return [doc]


def load(path):
    """The objects in a manifest file, in order (Namespaces first, so later objects find theirs)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        docs = [json.loads(text)]
    except ValueError:
        try:
            import yaml
        except ImportError:
            raise SystemExit(f"{path}: YAML seed files need PyYAML (run localstack/setup.sh); "
                             "JSON seed files work without it") from None
        docs = list(yaml.safe_load_all(text))
    objects = _flatten(docs)
    return sorted(objects, key=lambda o: o.get("kind") != "Namespace")
