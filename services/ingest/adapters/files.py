"""Reading history export files record by record, each with the line it starts on, so one bad record is
reported and skipped instead of losing the file.

Accepted layouts: JSONL (one record a line); a JSON array of records; or a JSON object holding the
array under a key (`tickets`, `conversations`, `dialogues`, ...) beside side-loaded lists such as
Zendesk's `users`.

A syntactically broken element of an array is reported as rejected (with the line it starts on) and the
walk goes on after it, at its end found by a string-aware bracket scan or at the next line indented like
it (see `_after_broken_element`). A document `json.loads` refuses because of such an element is walked
the same way, not mistaken for JSONL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_KEYS = ("tickets", "conversations", "dialogues", "records")
_WHITESPACE = " \t\r\n"
_CLOSERS = {"{": "}", "[": "]"}
_COMPACT_ELEMENT = re.compile(r",\s*(?=\{)")
_LINE_START = re.compile(r"\n([ \t]*)(?=\S)")


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (not JSON, not JSONL)."""


@dataclass
class RawRecord:
    line: int
    value: Any = None
    error: str | None = None


@dataclass
class ExportFile:
    records: list[RawRecord]
    sideloads: dict[str, Any] = field(default_factory=dict)


_decoder = json.JSONDecoder()


class _Lines:
    """Line numbers of positions in `text`, counted on from the last position asked about (a walk only
    moves forward), so numbering a large export stays linear."""

    def __init__(self, text: str):
        self.text, self.position, self.line = text, 0, 1

    def at(self, position: int) -> int:
        if position < self.position:
            self.position, self.line = 0, 1
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line


def _skip(text: str, position: int, chars: str = _WHITESPACE) -> int:
    while position < len(text) and text[position] in chars:
        position += 1
    return position


def _end_of_value(text: str, start: int, closer: str) -> int | None:
    """Where the (possibly broken) value at `start` ends: the position of the first `,` or `closer` outside
    strings and brackets. None when the brackets do not match up, or the text ends first."""
    expected: list[str] = []
    in_string = False
    position = start
    while position < len(text):
        char = text[position]
        if in_string:
            if char == "\\":
                position += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _CLOSERS:
            expected.append(_CLOSERS[char])
        elif char in "]}":
            if expected:
                if expected.pop() != char:
                    return None
            else:
                return position if char == closer else None
        elif char == "," and not expected:
            return position
        position += 1
    return None


def _decodes_as_element(text: str, position: int) -> bool:
    try:
        _, end = _decoder.raw_decode(text, position)
    except json.JSONDecodeError:
        return False
    end = _skip(text, end)
    return end < len(text) and text[end] in ",]"


def _next_aligned_element(text: str, broken_at: int) -> int | None:
    """Pretty-printed arrays: the next line starting at the broken element's indentation starts the next
    element (or is the array's `]`); a line indented less can only be the array's `]`. None when the
    element does not start its own line, or no such line follows."""
    line_start = text.rfind("\n", 0, broken_at) + 1
    indent = text[line_start:broken_at]
    if indent.strip():
        return None
    for match in _LINE_START.finditer(text, broken_at):
        first = text[match.end()]
        if match.group(1) == indent and first != "}":  # a `}` there closes the broken element itself
            return match.end()
        if len(match.group(1)) < len(indent):
            return match.end() if first == "]" else None
    return None


def _after_broken_element(text: str, broken_at: int) -> int | None:
    """Where the walk goes on after the broken element at `broken_at`; None if that cannot be told.

    The bracket scan is exact unless the breakage is an unbalanced quote or bracket, and then it tends to
    run past the next element; the indentation of a pretty-printed export cannot, so the earlier of the two
    wins. A compact export without a scannable extent resumes at the next `, {` that decodes."""
    found = [end for end in (_end_of_value(text, broken_at, "]"), _next_aligned_element(text, broken_at))
             if end is not None]
    if found:
        return min(found)
    for match in _COMPACT_ELEMENT.finditer(text, broken_at):
        if _decodes_as_element(text, match.end()):
            return match.end()
    return None


def _walk_array(text: str, start: int, lines: _Lines) -> tuple[list[RawRecord], int | None]:
    """The records of the JSON array whose `[` is at `start`, each with its line, and the position after its
    `]` (None when the array could not be read to its end). A broken element becomes a rejected record."""
    records: list[RawRecord] = []
    position = start + 1
    length = len(text)
    while True:
        position = _skip(text, position, _WHITESPACE + ",")
        if position >= length:
            records.append(RawRecord(lines.at(position), error="the array is not closed"))
            return records, None
        if text[position] == "]":
            return records, position + 1
        line = lines.at(position)
        try:
            value, position = _decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            resume = _after_broken_element(text, position)
            if resume is None:
                records.append(RawRecord(line, error=f"invalid JSON: {exc.msg} (line {exc.lineno}); "
                                                     "the rest of the array could not be read"))
                return records, None
            records.append(RawRecord(line, error=f"invalid JSON: {exc.msg} (line {exc.lineno})"))
            position = resume
            continue
        records.append(RawRecord(line, value))


def _walk_object(text: str, records_key: str | None) -> tuple[list[RawRecord] | None, dict[str, Any]]:
    """The records array of a top-level `{...}` document (under `records_key`, or the first of
    RECORD_KEYS holding an array) walked element by element, and the document's other members.

    Tolerant: a broken element is a rejected record, a broken side-loaded member is left out, so a
    document that `json.loads` refuses still yields what can be read. Records are None if no records
    array was found."""
    records: list[RawRecord] | None = None
    sideloads: dict[str, Any] = {}
    lines = _Lines(text)
    position = text.index("{") + 1
    while True:
        position = _skip(text, position, _WHITESPACE + ",")
        if position >= len(text) or text[position] == "}":
            break
        try:
            name, position = _decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            break
        position = _skip(text, position)
        if not isinstance(name, str) or position >= len(text) or text[position] != ":":
            break
        position = _skip(text, position + 1)
        wanted = name == records_key if records_key else name in RECORD_KEYS
        if records is None and wanted and text.startswith("[", position):
            records, end = _walk_array(text, position, lines)
            if end is None:
                break
            position = end
            continue
        try:
            value, position = _decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            end = _end_of_value(text, position, "}")
            if end is None:
                break
            position = end
            continue
        sideloads[name] = value
    return records, sideloads


def _jsonl(text: str) -> list[RawRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(RawRecord(number, json.loads(line)))
        except json.JSONDecodeError as exc:
            records.append(RawRecord(number, error=f"invalid JSON: {exc.msg}"))
    return records


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def read_export(path: Path) -> ExportFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path} is not UTF-8 text") from None
    stripped = text.lstrip()
    if not stripped:
        return ExportFile([])
    if stripped[0] == "[":
        return ExportFile(_walk_array(text, text.index("["), _Lines(text))[0])
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        first_line = stripped.splitlines()[0]
        if stripped[0] == "{" and not _is_json(first_line):
            # Not JSONL (its first line is no whole value): a document with a broken record in it.
            records, sideloads = _walk_object(text, None)
            if records is not None:
                return ExportFile(records, sideloads)
        return ExportFile(_jsonl(text))  # one object per line (a broken one is reported with its line)
    if isinstance(document, dict):
        for key in RECORD_KEYS:
            if isinstance(document.get(key), list):
                records, _ = _walk_object(text, key)
                if records is None:  # e.g. a duplicated key: json.loads kept the last one
                    records = [RawRecord(1, value) for value in document[key]]
                return ExportFile(records, {k: v for k, v in document.items() if k != key})
        return ExportFile([RawRecord(1, document)])  # a single record
    raise UnreadableFile(f"{path}: expected JSON objects, an array of them, or JSONL")
