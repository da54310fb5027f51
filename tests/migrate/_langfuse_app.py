"""An app traced with the real Langfuse SDK, unchanged but for LANGFUSE_HOST: run in its own process.

    python -m tests.migrate._langfuse_app --provider URL
    python -m tests.migrate._langfuse_app --minimal     (the hand-recorded generation and its score: no provider)

Reads LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY from the environment like any Langfuse
app. One request under `@observe` and `propagate_attributes` (user, session, tags, metadata, trace
name): a generation recorded by hand (`update_current_generation` with Langfuse-shaped usage, a cost,
a first-token time and a prompt), one that failed (level ERROR), the `langfuse.openai` drop-in (plain
and streamed) and the LangChain callback handler, both calling the stand-in provider; then scores
(`score_current_span`, `create_score`). Prints what the app saw as one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from opentelemetry import trace

USER, SESSION = "lf-user-7", "lf-session-7"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _span_start_ns() -> int:
    start: int = trace.get_current_span().start_time  # type: ignore[attr-defined]
    return start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider")
    parser.add_argument("--minimal", action="store_true")
    args = parser.parse_args()

    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI
    from langfuse import get_client, observe, propagate_attributes
    from langfuse.api.prompts.types.prompt import Prompt_Text
    from langfuse.langchain import CallbackHandler
    from langfuse.model import TextPromptClient
    from langfuse.openai import OpenAI

    langfuse = get_client()
    seen: dict[str, Any] = {"calls": {}}
    prompt = TextPromptClient(
        Prompt_Text(name="support-answer", version=3, prompt="Answer: {{q}}", config={}, labels=[], tags=[])
    )

    @observe(as_type="generation", name="manual-generation")
    def manual_generation() -> str:
        start_ns = _span_start_ns()
        first_token = EPOCH + dt.timedelta(microseconds=start_ns // 1000 + 250_000)
        langfuse.update_current_generation(
            model="gpt-4o-mini",
            model_parameters={"temperature": 0.3, "max_tokens": 64},
            input=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my order?"}],
            output={"role": "assistant", "content": "It ships tomorrow."},
            usage_details={"input": 24, "input_cached_tokens": 16, "output": 7, "output_reasoning_tokens": 5},
            cost_details={"input": 0.0001, "output": 0.0002, "total": 0.0003},
            completion_start_time=first_token,
            prompt=prompt,
            metadata={"channel": "email"},
        )
        langfuse.score_current_span(name="helpfulness", value=0.75, comment="clear")
        seen["calls"]["manual"] = {
            "span_id": langfuse.get_current_observation_id(),
            "ttft_ms": (start_ns // 1000 + 250_000 - start_ns // 1000) / 1000,
        }
        return "It ships tomorrow."

    @observe(as_type="generation", name="failed-generation")
    def failed_generation() -> None:
        langfuse.update_current_generation(
            model="gpt-4o-mini",
            input="Summarise the ticket",
            level="ERROR",
            status_message="upstream said 429: rate limit reached",
        )
        seen["calls"]["failed"] = {"span_id": langfuse.get_current_observation_id()}

    @observe(name="handle-request")
    def handle_request() -> None:
        seen["trace_id"] = langfuse.get_current_trace_id()
        seen["root_span_id"] = langfuse.get_current_observation_id()
        with propagate_attributes(
            user_id=USER,
            session_id=SESSION,
            tags=["beta", "support"],
            metadata={"feature": "support_chat", "tier": "pro"},
            trace_name="support-request",
        ):
            manual_generation()
            if args.minimal:
                return
            failed_generation()
            client = OpenAI(base_url=f"{args.provider}/v1", api_key="sk-test", max_retries=0)
            plain = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}], name="wrapped-plain"
            )
            seen["calls"]["wrapped_plain"] = _usage(plain.usage) | {"text": plain.choices[0].message.content}
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Count to three."}],
                stream=True,
                stream_options={"include_usage": True},
                name="wrapped-stream",
            )
            text, usage = "", None
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                if chunk.usage is not None:
                    usage = chunk.usage
            seen["calls"]["wrapped_stream"] = _usage(usage) | {"text": text}
            chat = ChatOpenAI(model="gpt-4o-mini", base_url=f"{args.provider}/v1", api_key="sk-test", max_retries=0)
            answer = chat.invoke([HumanMessage("Name a colour.")], config={"callbacks": [CallbackHandler()]})
            seen["calls"]["langchain"] = {"text": answer.content, **_lc_usage(answer.usage_metadata)}

    handle_request()
    if not args.minimal:
        langfuse.create_score(name="resolved", value="yes", data_type="CATEGORICAL", trace_id=seen["trace_id"])
        langfuse.create_score(name="escalated", value=0, data_type="BOOLEAN", trace_id=seen["trace_id"])
    langfuse.flush()
    langfuse.shutdown()
    seen["flushed"] = True
    print(json.dumps(seen))


def _usage(usage: Any) -> dict[str, Any]:
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    reasoning = usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": cached or 0,
        "reasoning_tokens": reasoning or 0,
    }


def _lc_usage(usage: Any) -> dict[str, Any]:
    details_in = usage.get("input_token_details") or {}
    details_out = usage.get("output_token_details") or {}
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "cached_tokens": details_in.get("cache_read", 0),
        "reasoning_tokens": details_out.get("reasoning", 0),
    }


if __name__ == "__main__":
    main()
