"""The wider redaction classes hold through a real server, with its default patterns: keys glued to a
word, secrets handed over as query parameters or under secret names, dotted card numbers."""

from __future__ import annotations

import json
import uuid

from tests.support.llmlens_server import LLMLensServer

SECRETS = {
    "glued": "sk-proj-Zq3Xw8Vb2Nm5Lk7Jh4Gf6Ds1",
    "query": "a1b2c3d4e5f6g7h8i9",
    "card": "4111.1111.1111.1111",
    "named": "hunter2-but-longer",
}


def test_the_server_masks_what_used_to_slip_through(server: LLMLensServer) -> None:
    tag = uuid.uuid4().hex
    prompt = (
        f"{tag}: call with key_{SECRETS['glued']} or x{SECRETS['glued']}, "
        f"GET https://api.example.com/v1/search?q=cats&api_key={SECRETS['query']}&page=2, "
        f"and pay with {SECRETS['card']}"
    )
    event = {
        "type": "llm",
        "model": "gpt-4o-mini",
        "prompt": prompt,
        "response": "ok",
        "metadata": {"feature": "chat", "password": SECRETS["named"]},
    }
    assert server.ingest([event])["accepted"] == 1
    rows = server.sql(f"SELECT prompt, metadata FROM llm_logs WHERE prompt LIKE '{tag}%'")
    assert len(rows) == 1
    stored = json.dumps(rows[0])
    for name, secret in SECRETS.items():
        assert secret not in stored, f"the {name} secret was stored: {stored}"
    assert rows[0]["prompt"] == (
        f"{tag}: call with key_[REDACTED_API_KEY] or x[REDACTED_API_KEY], "
        "GET https://api.example.com/v1/search?q=cats&api_key=[REDACTED_TOKEN]&page=2, "
        "and pay with [REDACTED_CARD]"
    )
