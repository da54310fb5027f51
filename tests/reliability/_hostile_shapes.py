"""JSON shapes that once answered 500 and lost the whole batch (issue 22), given to every fuzz suite as
seeds so they are tried on each run: nesting past the parser's recursion limit and just under it, integers
of hundreds of digits (too big for a float) and of thousands (past the 4300 digits Python converts from
text), and NaN/Infinity where numbers go."""

from __future__ import annotations

TOO_DEEP = "[" * 100_000 + "]" * 100_000
NEARLY_TOO_DEEP = (
    '[{"type": "tool", "tool_name": "t", "args": ' + '{"a": ' * 900 + "1" + "}" * 900 + "}, "
    '{"type": "llm", "model": "m", "metadata": ' + "[" * 900 + "]" * 900 + "}]"
)
HUGE_NUMBERS = (
    '[{"type": "llm", "model": "m", "latency_ms": '
    + "9" * 400
    + ', "ttft_ms": 1e400, "cost_usd": '
    + "9" * 5000
    + ', "temperature": '
    + "9" * 400
    + ', "prompt_tokens": '
    + "9" * 5000
    + ', "timestamp": '
    + "9" * 400
    + ', "metadata": {"x": NaN, "y": -Infinity, "z": '
    + "9" * 5000
    + "}}]"
)
HOSTILE_BODIES = [TOO_DEEP, NEARLY_TOO_DEEP, HUGE_NUMBERS]
