"""The stand-in provider playing an LLM judge: a JSON verdict derived from the prompt, the same every time.

The prompt's sections are read from the tags llmlens's judge templates put around them (`<question>`,
`<answer>`, `<context>`, `<reference>`, `<chunk>`, `<system_prompt>`). The score is a word overlap:

* with a `<chunk>`: the share of the question's words found in the chunk (relevance);
* else: the share of the answer's words found in the evidence: the context, else the reference, else the
  question (groundedness, correctness, helpfulness).

Words are lower-case runs of letters and digits of at least four characters, so "the" and "is" never count.
Tests plant relevant and irrelevant chunks, grounded and invented answers, and know the score in advance.
"""

from __future__ import annotations

import json
import re

_WORD = re.compile(r"[a-z0-9]{4,}")
GARBAGE = "I think this answer is pretty good overall, though it could say more."


def _section(prompt: str, tag: str) -> str | None:
    found = re.search(rf"<{tag}>(.*?)</{tag}>", prompt, re.DOTALL)
    return found.group(1) if found else None


def words(text: str | None) -> set[str]:
    return set(_WORD.findall((text or "").lower()))


def judge_score(prompt: str) -> tuple[float, str]:
    """(score 0-1, reasoning) for a judge prompt."""
    chunk = _section(prompt, "chunk")
    question = _section(prompt, "question")
    if chunk is not None:
        wanted, pool, what = words(question), words(chunk), "question words found in the chunk"
    else:
        evidence = next(
            (s for s in (_section(prompt, "context"), _section(prompt, "reference"), question) if s is not None), None
        )
        wanted, pool, what = words(_section(prompt, "answer")), words(evidence), "answer words found in the evidence"
    if not wanted:
        return 0.0, f"fake judge: no {what.split()[0]} words to look for"
    found = len(wanted & pool)
    return round(found / len(wanted), 2), f"fake judge: {found} of {len(wanted)} {what}"


def judge_reply(prompt: str) -> str:
    score, reasoning = judge_score(prompt)
    return json.dumps({"score": score, "reasoning": reasoning})
