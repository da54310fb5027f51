"""Rewrite the README's configuration table from llmlens.settings (run after adding a setting)."""

from __future__ import annotations

import re
from pathlib import Path

from llmlens.settings import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"

text = README.read_text()
new = re.sub(
    r"(<!-- settings-table:start -->\n).*?(<!-- settings-table:end -->)",
    lambda m: m.group(1) + settings_table() + "\n" + m.group(2),
    text,
    flags=re.S,
)
README.write_text(new)
print("README configuration table updated" if new != text else "README configuration table already current")
