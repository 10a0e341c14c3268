"""Reading a parsed JSON payload (a vendor's webhook, an export record, an SGD dialogue): a field that
must be there, one that may be, and the error a payload of the wrong shape raises (HTTP 422 at the
gateway, a rejected record in an import)."""

from __future__ import annotations


class WrongShape(ValueError):
    """A payload that parsed as JSON but is not shaped like the vendor's event (HTTP 422)."""


def require(mapping, *path: str):
    """mapping[path[0]][path[1]]...; a missing key or a non-object on the way raises WrongShape."""
    value = mapping
    walked = []
    for key in path:
        walked.append(key)
        if not isinstance(value, dict) or key not in value or value[key] is None:
            raise WrongShape(f"missing field {'.'.join(walked)}")
        value = value[key]
    return value


def optional(mapping, *path: str, default=None):
    value = mapping
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return default
        value = value[key]
    return value
