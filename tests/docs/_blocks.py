"""The fenced code blocks of the project's Markdown files, and the rules for running each kind."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The Markdown files a reader follows: every block in them is checked.
DOCUMENTS = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "examples" / "README.md", *(REPO / "docs").glob("*.md")]
)

# What each fence language means. `text` is output or a command synopsis, shown and never run.
RUN = ("bash", "sh", "python")
PARSE = ("toml", "json", "yaml", "sql", "promql")
SHOWN = ("text",)

_FENCE = re.compile(r"^```(\S*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class CodeBlock:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    not_run: str | None  # the reason given in a `<!-- not run: ... -->` comment right above the fence

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(path: Path) -> list[CodeBlock]:
    blocks: list[CodeBlock] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start = i
        lang = match.group(1)
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        previous = lines[start - 1] if start > 0 else ""
        reason = _NOT_RUN.match(previous)
        blocks.append(CodeBlock(path, start + 1, lang, "\n".join(body) + "\n", reason.group(1) if reason else None))
        i += 1
    return blocks


def all_blocks() -> list[CodeBlock]:
    return [block for path in DOCUMENTS for block in code_blocks(path)]
