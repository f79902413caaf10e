"""Fast answers to "does this value meet this JSON schema?" where the answer is yes (standard library only).

jsonschema validates each of a 10-minute faces.json's 15 000 frames through its generic machinery (~0.2 ms a frame,
with the landmarks' own fast path). Nearly every value it sees is valid, and only an invalid one needs jsonschema's
error and message. :func:`sure_check` turns a schema into plain Python checks that say True only where the value
meets the schema; False means "not sure": the caller asks jsonschema, which finds the error (or none). A schema with
a keyword these checks do not know gets no check at all (None).
"""

import itertools
import math
import re

PLAIN_KEYS = {"type", "items", "minItems", "maxItems"}
NUMBERS = {int, float}  # bool is no number; NaN/inf pass, as in jsonschema
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "default", "examples"}
# Types as jsonschema sees them, but stricter where that is simpler: an integer-valued float (1.0) is an "integer" to
# jsonschema; here it is "not sure".
TYPES = {"object": {dict}, "array": {list}, "string": {str}, "integer": {int}, "number": NUMBERS, "boolean": {bool},
         "null": {type(None)}}


def plainly_valid(schema, value):
    """True when ``value`` meets ``schema``, a schema of only ``type`` number/array, ``items``, ``minItems`` and
    ``maxItems`` (landmarks: arrays of 2-3 numbers); False when it does not, or the schema says anything else."""
    return _plainly_valid_all(schema, [value])


def _plainly_valid_all(schema, values):
    """:func:`plainly_valid` for every one of ``values`` at once, a nesting level at a time: the checks are set()s of
    the values' types and lengths, so the loops over the numbers run in C (478 landmarks x 3 numbers per face)."""
    if not isinstance(schema, dict) or set(schema) - PLAIN_KEYS:
        return False
    if schema.get("type") == "number":
        return len(schema) == 1 and set(map(type, values)) <= NUMBERS
    if schema.get("type") != "array" or not set(map(type, values)) <= {list}:
        return False
    lengths = set(map(len, values))
    if lengths and not schema.get("minItems", 0) <= min(lengths) <= max(lengths) <= schema.get("maxItems", math.inf):
        return False
    items = schema.get("items", {})
    return not items or _plainly_valid_all(items, list(itertools.chain.from_iterable(values)))


def sure_check(schema):
    """``check(value) -> bool``, True only where ``value`` meets ``schema``; None where the schema has a keyword
    beyond type, properties, required, additionalProperties, items, minItems, maxItems, minimum, maximum and
    pattern (and annotations)."""
    if schema is True or schema == {}:
        return lambda value: True
    if not isinstance(schema, dict) or set(schema) - ANNOTATIONS - _KEYWORDS.keys():
        return None
    plain = {key: value for key, value in schema.items() if key not in ANNOTATIONS}
    if plain.get("type") == "array" and _is_plain(plain):  # landmarks: all their numbers checked at once
        return lambda value: plainly_valid(plain, value)
    checks = []
    for key in _KEYWORDS.keys() & set(schema):
        check = _KEYWORDS[key](schema[key], schema)
        if check is None:
            return None
        checks.append(check)
    return lambda value: all(check(value) for check in checks)


def _is_plain(schema):
    """True for the schemas :func:`plainly_valid` judges: arrays (of arrays...) of numbers, lengths bounded."""
    if not isinstance(schema, dict) or set(schema) - PLAIN_KEYS:
        return False
    if schema.get("type") == "number":
        return len(schema) == 1
    return schema.get("type") == "array" and ("items" not in schema or _is_plain(schema["items"]))


def _type(names, _):
    names = [names] if isinstance(names, str) else names
    if not all(name in TYPES for name in names):
        return None
    allowed = set().union(*(TYPES[name] for name in names))
    return lambda value: type(value) in allowed


def _properties(properties, _):
    checks = {name: sure_check(sub) for name, sub in properties.items()}
    if None in checks.values():
        return None
    return lambda value: type(value) is not dict or all(check(value[name]) for name, check in checks.items()
                                                         if name in value)


def _additional(additional, schema):
    known = set(schema.get("properties", {}))
    if additional is False:
        return lambda value: type(value) is not dict or known.issuperset(value)
    check = sure_check(additional)
    if check is None:
        return None
    return lambda value: type(value) is not dict or all(check(v) for k, v in value.items() if k not in known)


def _required(names, _):
    return lambda value: type(value) is not dict or all(name in value for name in names)


def _items(items, _):
    check = sure_check(items)
    if check is None:
        return None
    return lambda value: type(value) is not list or all(map(check, value))


def _bound(test):
    def keyword(limit, _):
        if type(limit) not in NUMBERS:
            return None
        return lambda value: type(value) not in NUMBERS or test(value, limit)
    return keyword


def _length(test):
    def keyword(limit, _):
        return lambda value: type(value) is not list or test(len(value), limit)
    return keyword


def _pattern(pattern, _):
    try:
        search = re.compile(pattern).search
    except re.error:
        return None
    return lambda value: type(value) is not str or search(value) is not None


_KEYWORDS = {"type": _type, "properties": _properties, "additionalProperties": _additional, "required": _required,
             "items": _items, "minimum": _bound(lambda v, m: v >= m), "maximum": _bound(lambda v, m: v <= m),
             "minItems": _length(lambda n, m: n >= m), "maxItems": _length(lambda n, m: n <= m),
             "pattern": _pattern}
