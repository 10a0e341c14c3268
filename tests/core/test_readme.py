"""The README stays true: its first lines are the two commands, and every setting is documented."""

from clonedesk.core.settings_doc import markdown_table, settings_rows
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert README.index("```sh") < 40


def test_every_setting_is_in_the_readme_table():
    assert markdown_table() in README, "run `make readme-settings`"
    assert {"CLONEDESK_DATA_DIR", "CLONEDESK_KAFKA_BOOTSTRAP", "CLONEDESK_BROKER_PORT", "CLONEDESK_CLICKHOUSE_DSN",
            "CLONEDESK_BASE_MODEL", "CLONEDESK_ENGINE", "CLONEDESK_GATEWAY_PORT", "CLONEDESK_RESOLVER_PORT",
            "CLONEDESK_API_PORT", "CLONEDESK_OTLP_ENDPOINT"} <= {row[0] for row in settings_rows()}


def test_every_setting_says_what_it_is_for():
    undocumented = [env for env, _default, meaning in settings_rows() if not meaning.strip()]
    assert not undocumented, f"settings without a description: {undocumented}"
