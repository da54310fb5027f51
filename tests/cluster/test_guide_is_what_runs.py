"""The two-machine guide of docs/clickhouse.md is what tests/cluster/ runs: each of its configuration files
and its commands is, character for character, a file of tests/cluster/guide/ that the cluster fixture uses."""

from __future__ import annotations

import pytest
from tests.docs._blocks import REPO, code_blocks

from ._cluster import GUIDE, guide_commands

DOC = REPO / "docs" / "clickhouse.md"


@pytest.mark.parametrize("name", sorted(p.name for p in GUIDE.iterdir()))
def test_the_guide_shows_the_file_the_tests_run(name: str) -> None:
    text = (GUIDE / name).read_text()
    section = DOC.read_text().split("### Two machines", 1)[1]
    shown = [b for b in code_blocks(DOC) if b.text == text]
    assert shown, f"docs/clickhouse.md shows no block equal to tests/cluster/guide/{name}"
    assert f"```{shown[0].lang}\n{text}```" in section, f"{name} is shown in the Two machines section"
    assert f"`{name}`" in section or name == "commands.sh", f"the guide names {name}"


def test_the_guide_commands_are_migrate_a_key_and_a_server_per_node() -> None:
    commands = guide_commands()
    expected = [["llmlens", "migrate"], ["llmlens", "keys"], ["llmlens", "serve"], ["llmlens", "serve"]]
    assert [c[:2] for c in commands] == expected
    assert (GUIDE / "commands.sh").read_text().count("?cluster=llmlens") == 3
