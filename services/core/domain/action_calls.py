"""A back-office call as the decision header writes it, `Name(key=value, …)`, and a call's result as the
tool turn the model reads after it (pure; no I/O). One module, so the importer that writes the history,
the trainer that teaches it and the resolver that carries it out agree on every character.

Values are written bare when that reads back unchanged (`city=San Jose`), and otherwise as a JSON
string (`where_to="Sydney, Australia"`, `note="say \\"hi\\""`), with `]` escaped so that the header
(`[decision=ACTION action=…]`) stays one bracket. Reading is lenient with what older histories wrote: a
bare value runs up to the next `, key=` or the closing parenthesis, so `where_to=Sydney, Australia`
is still one value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\(")
_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*")
# A bare value must not need quoting to read back: no delimiters, quotes or brackets, no edge spaces.
_BARE = re.compile(r"[^\s,()=\"\[\]\\][^,()=\"\[\]\\\n]*(?<!\s)")
# Where a bare value ends: the next `, key=` or the final `)`.
_BARE_END = re.compile(r",\s*[A-Za-z_][A-Za-z0-9_.\-]*\s*=|\)\s*$")

# How much of a back office's answer the tool turn shows: the first results, each value cut short; the
# model's context is a few hundred tokens and agents quote the first offer.
RESULTS_SHOWN = 2
VALUE_CHARS = 80


class MalformedCall(ValueError):
    """The text is not `Name(key=value, …)`: the resolver escalates instead of calling anything."""


@dataclass(frozen=True)
class ActionCall:
    name: str
    parameters: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return format_action_call(self.name, self.parameters)


def _value_text(value) -> str:
    value = "" if value is None else str(value)
    if _BARE.fullmatch(value):
        return value
    return json.dumps(value, ensure_ascii=False).replace("]", "\\u005d")


def format_action_call(name: str, parameters: dict | None = None) -> str:
    return f"{name}(" + ", ".join(f"{key}={_value_text(value)}" for key, value in (parameters or {}).items()) + ")"


def parse_action_call(text: str) -> ActionCall:
    """`Name(key=value, …)` → ActionCall; raises MalformedCall for anything else (no name, no closing
    parenthesis, a key without `=`, a broken quoted value, a repeated key, text after the call)."""
    if not isinstance(text, str):
        raise MalformedCall("the call is not text")
    match = _NAME.match(text)
    if not match:
        raise MalformedCall(f"no call name in {text[:60]!r}")
    name, position = match.group(1), match.end()
    body = text.rstrip()
    if not body.endswith(")"):
        raise MalformedCall(f"{name}: no closing parenthesis")
    parameters: dict[str, str] = {}
    if re.match(r"\s*\)\s*$", body[position:]):
        return ActionCall(name, parameters)
    while True:
        key_match = _KEY.match(body, position)
        if not key_match:
            raise MalformedCall(f"{name}: expected key=value at {body[position:position + 30]!r}")
        key, position = key_match.group(1), key_match.end()
        if key in parameters:
            raise MalformedCall(f"{name}: {key} given twice")
        if body.startswith('"', position):
            try:
                value, position = json.JSONDecoder().raw_decode(body, position)
            except ValueError as exc:
                raise MalformedCall(f"{name}: broken quoted value for {key}: {exc}") from None
            if not isinstance(value, str):
                raise MalformedCall(f"{name}: {key} is not a string")
            rest = re.match(r"\s*(,|\)\s*$)", body[position:])
            if not rest:
                raise MalformedCall(f"{name}: text after the value of {key}")
            position += rest.end()
            last = rest.group(1) != ","
        else:
            end = _BARE_END.search(body, position)
            if not end:
                raise MalformedCall(f"{name}: no end to the value of {key}")
            value = body[position:end.start()].strip()
            last = body[end.start()] == ")"
            position = end.start() + 1
        parameters[key] = value
        if last:
            return ActionCall(name, parameters)


@dataclass(frozen=True)
class ActionAnswer:
    """A back office's answer to a call: `{"ok": true, "results": […]}` or `{"ok": false, "error": …}`."""

    ok: bool
    results: tuple[dict, ...] = ()
    error: str = ""

    def to_json(self) -> str:
        body = {"ok": True, "results": list(self.results)} if self.ok else {"ok": False, "error": self.error}
        return json.dumps(body, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ActionAnswer":
        """Raises ValueError when `text` is not an answer of the contract's shape."""
        body = json.loads(text)
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            raise ValueError("an answer is an object with a boolean `ok`")
        if not body["ok"]:
            return cls(False, (), str(body.get("error") or "the back office said no"))
        results = body.get("results", [])
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise ValueError("`results` is a list of objects")
        return cls(True, tuple(results))


def result_text(answer: ActionAnswer) -> str:
    """The tool turn after a call: what the model reads before it writes the reply to the customer."""
    if not answer.ok:
        return f"failed: {answer.error}"
    lines = [f"ok: {len(answer.results)} result{'s' if len(answer.results) != 1 else ''}"]
    for number, result in enumerate(answer.results[:RESULTS_SHOWN], start=1):
        fields = ", ".join(f"{key}={str(value)[:VALUE_CHARS]}" for key, value in sorted(result.items()))
        lines.append(f"{number}. {fields}")
    return "\n".join(lines)
