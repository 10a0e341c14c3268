"""Reading history export files record by record, each with the line it starts on, so one bad record is
reported and skipped instead of losing the file.

Accepted layouts: JSONL (one record a line); a JSON array of records; or a JSON object holding the
array under a key (`tickets`, `conversations`, `dialogues`, ...) beside side-loaded lists such as
Zendesk's `users`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

RECORD_KEYS = ("tickets", "conversations", "dialogues", "records")


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


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _walk_array(text: str, start: int) -> Iterator[RawRecord]:
    """Records of the JSON array whose `[` is at `start`, each with its line; a broken element stops it."""
    decoder = json.JSONDecoder()
    position = start + 1
    length = len(text)
    while True:
        while position < length and text[position] in " \t\r\n,":
            position += 1
        if position >= length:
            yield RawRecord(_line_of(text, position), error="the array is not closed")
            return
        if text[position] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            yield RawRecord(_line_of(text, position), error=f"invalid JSON: {exc.msg}")
            return
        yield RawRecord(_line_of(text, position), value)
        position = end


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


def read_export(path: Path) -> ExportFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path} is not UTF-8 text") from None
    stripped = text.lstrip()
    if not stripped:
        return ExportFile([])
    if stripped[0] == "[":
        return ExportFile(list(_walk_array(text, text.index("["))))
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return ExportFile(_jsonl(text))  # one object per line (or a broken document: lines say where)
    if isinstance(document, dict):
        for key in RECORD_KEYS:
            if isinstance(document.get(key), list):
                decoder_start = _find_array(text, key)
                records = list(_walk_array(text, decoder_start)) if decoder_start is not None else [
                    RawRecord(1, value) for value in document[key]]
                return ExportFile(records, {k: v for k, v in document.items() if k != key})
        return ExportFile([RawRecord(1, document)])  # a single record
    raise UnreadableFile(f"{path}: expected JSON objects, an array of them, or JSONL")


def _find_array(text: str, key: str) -> int | None:
    """Where the top-level `"key": [` array starts (its `[`)."""
    decoder = json.JSONDecoder()
    position = text.index("{") + 1
    length = len(text)
    while position < length:
        while position < length and text[position] in " \t\r\n,":
            position += 1
        if position >= length or text[position] == "}":
            return None
        name, position = decoder.raw_decode(text, position)
        while text[position] in " \t\r\n:":
            position += 1
        if name == key:
            return position
        _, position = decoder.raw_decode(text, position)
    return None
