"""An app traced with the LangSmith SDK in OpenTelemetry mode, unchanged: run in its own process.

    python -m tests.migrate._langsmith_app --provider URL

The SDK reads LANGSMITH_TRACING, LANGSMITH_OTEL_ONLY and OTEL_EXPORTER_OTLP_ENDPOINT from the
environment. A `@traceable` chain (with the session and user in its metadata) around a call through
`wrap_openai` to the stand-in provider. Prints what the app saw as one JSON line.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", required=True)
    args = parser.parse_args()

    import openai
    from langsmith import traceable
    from langsmith.run_helpers import get_current_run_tree
    from langsmith.wrappers import wrap_openai

    client = wrap_openai(openai.OpenAI(base_url=f"{args.provider}/v1", api_key="sk-test", max_retries=0))
    seen: dict[str, Any] = {}

    @traceable(
        run_type="chain", name="answer-question", metadata={"session_id": "ls-session-5", "user_id": "ls-user-5"}
    )
    def answer(question: str) -> str:
        run = get_current_run_tree()
        seen["run_id"] = str(run.id) if run is not None else None
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        usage = reply.usage
        seen["call"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0,
            "reasoning_tokens": (usage.completion_tokens_details.reasoning_tokens or 0)
            if usage.completion_tokens_details
            else 0,
            "text": reply.choices[0].message.content,
        }
        return reply.choices[0].message.content or ""

    answer("What is the capital of Spain?")
    from langsmith.run_trees import get_cached_client

    get_cached_client().flush()
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    seen["flushed"] = bool(getattr(provider, "force_flush", lambda *_: True)(30_000))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
