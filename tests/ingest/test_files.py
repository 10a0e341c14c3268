import json

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
