import json

import pytest

from clonedesk.ingest.adapters.files import read_export


def test_jsonl_bad_lines_are_reported_with_their_line_numbers(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2\n{"id": 3}\n')
    records = read_export(path).records
    assert [(r.line, r.value, r.error is not None) for r in records] == [
        (1, {"id": 1}, False), (3, None, True), (4, {"id": 3}, False)]


def test_json_array_records_know_their_lines(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"id": 1}, {"id": 2}, {"id": 3}], indent=2))
    records = read_export(path).records
    assert [r.value["id"] for r in records] == [1, 2, 3]
    assert [r.line for r in records] == [2, 5, 8]


def test_wrapped_document_with_sideloads(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"users": [{"id": 2, "role": "agent"}], "tickets": [{"id": 7}, {"id": 8}],
                                "end_of_stream": True}, indent=1))
    export = read_export(path)
    assert [r.value["id"] for r in export.records] == [7, 8]
    assert export.sideloads["users"] == [{"id": 2, "role": "agent"}]
    assert all(r.line > 1 for r in export.records)


def _pretty_with_a_broken_element(records: list[dict], broken: str, at: int, indent: str) -> str:
    """`records` pretty-printed one per element, with the raw text `broken` spliced in as element `at`."""
    elements = [indent + json.dumps(r, indent=2).replace("\n", "\n" + indent) for r in records]
    elements.insert(at, indent + broken.replace("\n", "\n" + indent))
    return "[\n" + ",\n".join(elements) + "\n" + indent[:-2] + "]"


BROKEN_ELEMENTS = {
    "missing comma": '{\n  "id": 2\n  "subject": "no comma before me"\n}',
    "stray brace in a string is fine, a bare word is not": '{\n  "id": 2,\n  "subject": "a } and a ]",\n'
                                                             '  "status": solved\n}',
    "truncated": '{\n  "id": 2,\n  "subject": "cut off',
    "unbalanced bracket": '{\n  "id": 2,\n  "tags": ["a", "b"\n}',
}


@pytest.mark.parametrize("broken", BROKEN_ELEMENTS.values(), ids=BROKEN_ELEMENTS.keys())
def test_a_broken_element_of_a_top_level_array_loses_only_itself(tmp_path, broken):
    path = tmp_path / "export.json"
    text = _pretty_with_a_broken_element([{"id": 1}, {"id": 3, "body": "x"}, {"id": 4}], broken, 1, "  ")
    path.write_text(text)
    records = read_export(path).records
    lines = text.splitlines()
    assert [r.value["id"] if r.value else None for r in records] == [1, None, 3, 4]
    assert records[1].error and "invalid JSON" in records[1].error
    # Each record's line is where its element opens.
    assert [lines[r.line - 1].strip() for r in records] == ["{", "{", "{", "{"]
    assert records[2].line == lines.index('  {', records[1].line) + 1
    assert lines[records[2].line].strip() == '"id": 3,'


def test_a_broken_element_of_the_tickets_array_in_an_object_export(tmp_path):
    path = tmp_path / "export.json"
    array = _pretty_with_a_broken_element([{"id": 7}, {"id": 9}], BROKEN_ELEMENTS["missing comma"], 1, "    ")
    text = ('{\n  "users": [{"id": 2, "role": "agent"}],\n  "tickets": ' + array.lstrip() +
            ',\n  "end_of_stream": true\n}\n')
    path.write_text(text)
    export = read_export(path)
    assert [r.value["id"] if r.value else None for r in export.records] == [7, None, 9]
    lines = text.splitlines()
    assert [lines[r.line - 1].strip() for r in export.records] == ["{", "{", "{"]
    assert '"id": 9' in lines[export.records[2].line]
    assert 'no comma' in lines[export.records[1].line + 1]
    # The members around the records still come through (Zendesk's users say who is an agent).
    assert export.sideloads == {"users": [{"id": 2, "role": "agent"}], "end_of_stream": True}


def test_a_compact_array_with_a_broken_element(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('[{"id": 1}, {"id": 2, "x": nope}, {"id": 3, "tags": ["a"]},\n'
                    '{"id": 4 "y": 1}, {"id": 5}]')
    records = read_export(path).records
    assert [(r.line, r.value["id"] if r.value else None) for r in records] == [
        (1, 1), (1, None), (1, 3), (2, None), (2, 5)]


def test_an_array_broken_past_repair_keeps_what_came_before(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('[{"id": 1}, {"id": 2, "subject": "never closed')
    records = read_export(path).records
    assert records[0].value == {"id": 1}
    assert len(records) == 2 and "could not be read" in records[1].error
