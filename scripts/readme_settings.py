"""Rewrites the settings table in README.md from the settings classes (between the markers)."""

import re
from pathlib import Path

from clonedesk.core.settings_doc import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"

text = README.read_text()
block = f"{BEGIN}\n{markdown_table()}\n{END}"
if BEGIN in text:
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL)
else:
    text = text.replace("SETTINGS_TABLE", block)
README.write_text(text)
print("README settings table updated")
