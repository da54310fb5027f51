"""`llmlens.init(redact=...)`: the SDK masks before events leave the process."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.support.llmlens_server import LLMLensServer

import llmlens


def test_sdk_masks_before_sending(server: LLMLensServer) -> None:
    tag = uuid.uuid4().hex[:12]
    llmlens.init(url=server.url, schedule_delay_s=0.05, redact={"patterns": ["email"]}, raise_internal_errors=True)
    try:
        llmlens.log_llm_call(f"{tag} write to ann@example.com", "done, ann@example.com", "gpt-4o", 10, 2, 100.0, None)
        llmlens.log_tool_call("send_mail", {"to": "ann@example.com"}, {"ok": True}, 12.0, True)
        assert llmlens.flush(10)
    finally:
        llmlens.shutdown()
    rows = server.sql(f"SELECT prompt, response, trace_id FROM llm_logs WHERE prompt LIKE '{tag}%'")
    assert rows[0]["prompt"] == f"{tag} write to [REDACTED_EMAIL]"
    assert rows[0]["response"] == "done, [REDACTED_EMAIL]"
    # the server's default patterns do not include email: the masking happened in the SDK
    tools = server.sql("SELECT args FROM tool_logs WHERE tool_name = 'send_mail'")
    assert "ann@example.com" not in str(tools) and "[REDACTED_EMAIL]" in str(tools)


def test_a_bad_redaction_config_is_reported() -> None:
    # logged and the SDK stays off in an app; under pytest internal errors are raised
    with pytest.raises(ValueError, match="unknown redaction pattern"):
        llmlens.init(url="http://127.0.0.1:9", redact={"patterns": ["nope"]})
    assert not llmlens.is_enabled()


def test_sdk_defaults_mask_glued_keys_query_secrets_and_dotted_cards(tmp_path: Path) -> None:
    # The server masks nothing here: whatever is masked, the SDK masked before sending.
    with LLMLensServer(tmp_path / "data", env={"LLMLENS_REDACTION": '{"enabled": false}'}) as srv:
        tag = uuid.uuid4().hex[:12]
        llmlens.init(url=srv.url, schedule_delay_s=0.05, redact=True, raise_internal_errors=True)
        try:
            prompt = f"{tag} key_sk-proj-Zq3Xw8Vb2Nm5Lk7Jh4Gf6Ds1 /s?api_key=a1b2c3d4e5f6g7h8 4111.1111.1111.1111"
            llmlens.log_llm_call(prompt, "ok", "gpt-4o", 10, 2, 100.0, None, metadata={"api_key": "abc"})
            assert llmlens.flush(10)
        finally:
            llmlens.shutdown()
        rows = srv.sql(f"SELECT prompt, metadata FROM llm_logs WHERE prompt LIKE '{tag}%'")
    assert rows[0]["prompt"] == f"{tag} key_[REDACTED_API_KEY] /s?api_key=[REDACTED_TOKEN] [REDACTED_CARD]"
    assert "abc" not in str(rows[0]["metadata"])
