"""The evaluator inside a real `llmlens serve`: configured by llmlens.toml, it fires once on a cost
spike sent over HTTP, signs its webhook, serves the rules API, the Alerts page and the forecast; and
`llmlens alerts check` works against the server and against a data directory."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tests.alerts._evaluator import wait_for_evaluations
from tests.alerts._receiver import WebhookReceiver
from tests.alerts._traffic import Traffic, as_event, new_store, utc_now_minute
from tests.support.llmlens_server import LLMLensServer

from llmlens.alerts import SIGNATURE_HEADER, verify_signature
from llmlens.cli import main

SECRET = "hook-secret"


def _write_baseline(data_dir: Path, *, spike: bool = False) -> None:
    now = utc_now_minute()
    traffic = Traffic(seed=31)
    traffic.baseline(now, until=now - timedelta(minutes=1))
    if spike:
        _whale(traffic, now)
    store = new_store(data_dir)
    try:
        traffic.write(store)
    finally:
        store.close()


def _whale(traffic: Traffic, now: object) -> None:
    for i in range(30):
        traffic.llm(now - timedelta(minutes=50) + timedelta(minutes=i * 1.5), user_id="user-whale", cost_usd=0.10)  # type: ignore[operator]


def _config(tmp_path: Path, hook_url: str) -> Path:
    path = tmp_path / "llmlens.toml"
    path.write_text(
        f"""
alert_interval_s = 0.5
public_url = "http://lens.test"

[[alerts]]
name = "cost spike"
type = "cost_spike"
factor = 3.0

[[notifiers]]
type = "webhook"
name = "ops"
url = "{hook_url}"
secret = "{SECRET}"
backoff_s = 0.1
"""
    )
    return path


def test_evaluator_in_a_real_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _write_baseline(data_dir)
    with WebhookReceiver() as hook:
        config = _config(tmp_path, hook.url)
        with LLMLensServer(data_dir, args=["--config", str(config)]) as server, server.client() as client:
            doc = wait_for_evaluations(server.url, 3)  # the baseline alone, evaluated and nothing sent
            assert hook.received == []
            assert doc["active"] == [] and doc["last_run"]["at"] is not None
            assert {e["rule"] for e in doc["last_run"]["evaluations"]} >= {"cost spike", "error rate"}
            assert not any(e["firing"] for e in doc["last_run"]["evaluations"])

            traffic = Traffic(seed=32)
            _whale(traffic, utc_now_minute())
            server.ingest([as_event(s) for s in traffic.spans])
            received = hook.wait_for(1, timeout_s=20)
            doc = wait_for_evaluations(server.url, 3)  # more evaluations while it keeps firing: no more notifications
            assert [e["firing"] for e in doc["last_run"]["evaluations"] if e["rule"] == "cost spike"] == [True]
            assert len(hook.received) == 1
            (firing,) = received
            assert verify_signature(firing.body, SECRET, firing.headers[SIGNATURE_HEADER.lower()])
            payload = firing.json()
            assert payload["event"] == "alert.firing" and payload["rule"]["name"] == "cost spike"
            assert payload["attribution"]["drivers"]["user"][0]["name"] == "user-whale"
            assert payload["links"]["traces"].startswith("http://lens.test/traces?")

            doc = client.get("/api/v1/alerts").json()
            assert [a["rule"] for a in doc["active"]] == ["cost spike"]
            assert doc["history"][0]["state"] == "firing"
            page = client.get("/alerts")
            assert page.status_code == 200 and "user-whale" in page.text and "Traces behind it" in page.text
            overview = client.get("/")
            assert overview.status_code == 200 and "cost spike" in overview.text

            forecast = client.get("/api/v1/forecast").json()
            assert forecast["month_to_date_usd"] > 0 and forecast["high_usd"] >= forecast["projected_usd"]

            # The CLI against the server: dry run, exit 1, names the driver.
            check = subprocess.run(
                [sys.executable, "-m", "llmlens.cli", "alerts", "check", "--url", server.url],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert check.returncode == 1, check.stderr
            assert "cost spike" in check.stdout and "user-whale" in check.stdout

            _rules_api(client)

            # Deleting the firing rule resolves its alert: the second and last notification.
            assert client.delete("/api/v1/alerts/rules/cost spike").status_code == 200
            received = hook.wait_for(2, timeout_s=20)
            wait_for_evaluations(server.url, 3)  # and nothing after it
            assert [r.json()["event"] for r in hook.received] == ["alert.firing", "alert.resolved"]
            assert all(verify_signature(r.body, SECRET, r.headers[SIGNATURE_HEADER.lower()]) for r in received)
            assert client.get("/api/v1/alerts").json()["active"] == []


def _rules_api(client: httpx.Client) -> None:
    rules = client.get("/api/v1/alerts/rules").json()["rules"]
    by_name = {r["name"]: r for r in rules}
    assert by_name["cost spike"]["source"] == "config" and by_name["error rate"]["source"] == "default"
    rule = {"name": "chat errors", "type": "error_rate", "max_error_rate": 0.2, "scope": {"feature": "chat"}}
    created = client.post("/api/v1/alerts/rules", json=rule)
    assert created.status_code == 201 and created.json()["rule"]["scope"] == {"feature": "chat"}
    assert client.post("/api/v1/alerts/rules", json=rule).status_code == 409
    bad = client.post("/api/v1/alerts/rules", json={"name": "x", "type": "error_rate", "max_error_rate": "high"})
    assert bad.status_code == 422 and "max_error_rate" in bad.json()["error"]
    assert client.post("/api/v1/alerts/rules", json={"name": "y", "type": "nope"}).status_code == 422
    replaced = client.put("/api/v1/alerts/rules/chat errors", json={**rule, "max_error_rate": 0.3})
    assert replaced.status_code == 200 and replaced.json()["rule"]["max_error_rate"] == 0.3
    assert {r["name"]: r for r in client.get("/api/v1/alerts/rules").json()["rules"]}["chat errors"]["source"] == "api"
    assert client.delete("/api/v1/alerts/rules/chat errors").status_code == 200
    assert client.delete("/api/v1/alerts/rules/chat errors").status_code == 404
    ran = client.post("/api/v1/alerts/evaluate?dry_run=1").json()
    assert ran["dry_run"] is True and [e["rule"] for e in ran["firing"]] == ["cost spike"]


@pytest.mark.parametrize("spike", [False, True])
def test_cli_check_on_a_data_directory(tmp_path: Path, spike: bool, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    _write_baseline(data_dir, spike=spike)
    code = main(["alerts", "check", "--data", str(data_dir)])
    out = capsys.readouterr().out
    if spike:
        assert code == 1
        assert "FIRING" in out and "cost spike" in out and "user-whale" in out
    else:
        assert code == 0 and "nothing fires" in out


def test_cli_check_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts"]) == 2
    assert "alerts check" in capsys.readouterr().err
