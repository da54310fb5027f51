"""Typed settings, read once at the edge (CLI flags > environment > llmlens.toml > defaults).

Every setting has an `LLMLENS_<NAME>` environment variable and a key in `llmlens.toml`; the README
table is generated from SETTINGS and a test keeps the two in step.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A bad configuration value; the message names the setting and where it came from."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4318
    data_dir: Path = Path(".llmlens")
    store: str = ""
    store_memory_mb: int = 256
    price_file: Path | None = None
    project: str = "default"
    max_body_bytes: int = 50 * 1024 * 1024
    max_decompressed_bytes: int = 50 * 1024 * 1024
    max_queued_events: int = 200_000
    decode_workers: int = -1
    trace_context_memory_mb: int = 32
    sql_timeout_s: float = 30.0
    sql_max_rows: int = 10_000
    otlp_grpc_port: int = 4317
    demo: bool = False
    log_level: str = "info"
    upstreams: dict[str, str] = field(default_factory=dict)
    budgets: dict[str, Any] = field(default_factory=dict)
    gateway: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_interval_s: float = 60.0
    insights_interval_s: float = 300.0
    insights_max_calls: int = 500_000
    insights_embedding_model: str = ""
    insights_semantic_threshold: float = 0.95
    public_url: str = ""
    notifiers: list[dict[str, Any]] = field(default_factory=list)
    retention_days: int = 0
    redaction: dict[str, Any] = field(default_factory=dict)
    auth: str = "auto"
    max_batch_events: int = 10_000
    max_field_chars: int = 200_000
    ingest_rate_limit: float = 0.0
    session_ttl_s: float = 7 * 24 * 3600.0
    forwarded_allow_ips: list[str] = field(default_factory=list)
    forward: list[dict[str, Any]] = field(default_factory=list)
    replay: dict[str, Any] = field(default_factory=dict)
    simulated_provider: str = "auto"
    exports: list[dict[str, Any]] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)
    evaluators: list[dict[str, Any]] = field(default_factory=list)
    judge: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


# name -> (help text, example). The README's configuration table comes from here.
SETTINGS_HELP: dict[str, tuple[str, str]] = {
    "host": ("Address the server binds.", "127.0.0.1"),
    "port": ("HTTP port: UI, API, OTLP/HTTP (/v1/traces, /v1/logs) and the gateway (/proxy/...).", "4318"),
    "data_dir": ("Folder of the embedded DuckDB store (`llmlens.duckdb`) and other state.", ".llmlens"),
    "store": (
        "Store URL: `duckdb://PATH` (default: under data_dir) or `clickhouse://user:pass@host:port/db`.",
        "",
    ),
    "store_memory_mb": (
        "Memory cap of the embedded DuckDB store, MB (its buffer cache and query state; larger queries spill to"
        " disk). 0: DuckDB's default, 80 % of RAM.",
        "256",
    ),
    "price_file": (
        "TOML or YAML price file for self-hosted or negotiated models; overrides genai-prices.",
        "prices.toml",
    ),
    "project": ("Project for events that name none.", "default"),
    "max_body_bytes": ("Largest accepted request body (413 above).", "52428800"),
    "max_decompressed_bytes": (
        "Most bytes a compressed body (gzip or deflate, also gRPC compression) may expand to; 413 above, found while"
        " decompressing, so a small body cannot take the server's memory.",
        "52428800",
    ),
    "max_queued_events": ("Events waiting for the writer before ingest answers 503 + Retry-After.", "200000"),
    "decode_workers": (
        "Processes that decode large OTLP bodies beside the server (-1: one fewer than the CPU cores, at most 4;"
        " 0: decode in threads). Started on the first large body, stopped after a minute idle.",
        "-1",
    ),
    "trace_context_memory_mb": (
        "Memory the OTLP trace assembler may hold for traces still arriving (context to inherit, log content"
        " waiting for its span), MB. When full, the least recently seen trace of the project holding the most is"
        " dropped (counted in /metrics; its late spans are matched against the store instead).",
        "32",
    ),
    "sql_timeout_s": ("Statement timeout of the SQL console and `llmlens sql`.", "30"),
    "sql_max_rows": ("Row limit of the SQL console.", "10000"),
    "otlp_grpc_port": ("OTLP/gRPC receiver port; 0 disables it.", "4317"),
    "demo": ("Fill the store with demo traffic at start-up.", "false"),
    "log_level": ("Server log level.", "info"),
    "upstreams": (
        "Gateway upstreams, name -> base URL (`openai` and `anthropic` have defaults).",
        '{vllm = "http://127.0.0.1:8000/v1"}',
    ),
    "budgets": ("Spend limits: per-user tiers and per-feature monthly limits.", "see Budgets"),
    "gateway": (
        "Gateway options: timeout_s, connect_timeout_s, cache (true or upstream names), cache_ttl_s, "
        "cache_max_entries, cache_max_bytes, max_concurrent_per_user, max_connections.",
        '{cache = ["openai"], cache_ttl_s = 3600}',
    ),
    "alerts": ("Alert rules (array of tables).", "see Alerts"),
    "alert_interval_s": ("How often the alert evaluator runs.", "60"),
    "insights_interval_s": (
        "How often the Insights findings are recomputed in the background (also at once when a project has new"
        " data and someone looks); 0: only when someone looks.",
        "300",
    ),
    "insights_max_calls": (
        "Most LLM calls the Insights findings read per refresh: a window holding more is examined over its most"
        " recent hours up to this many calls, and savings are extrapolated from them.",
        "500000",
    ),
    "insights_embedding_model": (
        "Embedding model for the semantic tier of cacheable prompts, `UPSTREAM:MODEL` (or `MODEL` on `openai`):"
        " recent prompts are embedded in the background through that upstream's OpenAI-compatible /embeddings"
        " (key from `<UPSTREAM>_API_KEY`) and kept in data_dir/embeddings.sqlite3; empty: off, nothing is sent.",
        "openai:text-embedding-3-small",
    ),
    "insights_semantic_threshold": (
        "Cosine similarity at or above which two prompts count as the same question for the semantic tier.",
        "0.95",
    ),
    "public_url": (
        "Base URL people use to reach this server; alert messages link to traces under it (default: host:port).",
        "https://llmlens.example.com",
    ),
    "notifiers": ("Alert notification targets: webhook, slack, log.", "see Alerts"),
    "retention_days": ("Delete data older than this many days; 0 keeps everything.", "0"),
    "redaction": ("PII redaction patterns and mode.", "see Security"),
    "auth": ("`on`, `off` or `auto` (on whenever the server binds a non-loopback address).", "auto"),
    "max_batch_events": ("Most events one ingest request may carry (413 above).", "10000"),
    "max_field_chars": (
        "Longer prompts, responses and attribute values are cut here, with a `…[truncated N chars]` marker.",
        "200000",
    ),
    "ingest_rate_limit": ("Events per second each API key may ingest (429 + Retry-After above); 0: no limit.", "0"),
    "session_ttl_s": ("How long a UI login lasts, in seconds.", "604800"),
    "forwarded_allow_ips": (
        "Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For and X-Forwarded-Proto are believed:"
        " the client address for login throttling and logs. Empty: the headers are ignored, whoever sends them.",
        '["10.0.0.5"]',
    ),
    "forward": (
        "Forward every received span as OTLP to these collectors (url, headers, timeout_s, max_queue, ...).",
        "see Integrations",
    ),
    "replay": (
        "Replay and compare: scorers (import paths `module:function` allowed from the UI and API), "
        "concurrency, timeout_s. Keys come from OPENAI_API_KEY, ANTHROPIC_API_KEY, <UPSTREAM>_API_KEY.",
        '{scorers = ["myapp.evals:polite"], concurrency = 4}',
    ),
    "simulated_provider": (
        "`auto` (on with `--demo` only), `on` or `off`: Replay and Compare through a built-in stand-in that answers in"
        " the OpenAI and Anthropic formats with text labelled simulated, so they work offline and without keys."
        " Upstreams you configure keep theirs.",
        "auto",
    ),
    "exports": (
        "Scheduled exports to a folder: array of tables with folder, kind (llm, tool, retrieval, feedback, spans), "
        "format (parquet, jsonl, csv), every (e.g. 1d), delay (default 5m), project.",
        '[{folder = "exports", kind = "llm", format = "parquet", every = "1d"}]',
    ),
    "quality": (
        "Scores and inferred feedback (docs/quality.md): inferred (on/off), retry_window_s, retry_similarity,"
        " edit_similarity, abandon_after_s, session_idle_s, scan_interval_s, lookback_s; evaluator_interval_s"
        " (how often online evaluator rules look for new calls).",
        "{retry_window_s = 120, retry_similarity = 0.9, edit_similarity = 0.6, abandon_after_s = 30}",
    ),
    "evaluators": (
        "Online evaluator rules (array of tables, docs/quality.md): name, evaluator, filter (feature, model, template,"
        " kind, environment), sample_rate, daily_budget_usd, project; they score new calls in the background.",
        '[{name = "helpful", evaluator = "helpfulness", sample_rate = 0.1, daily_budget_usd = 2}]',
    ),
    "judge": (
        "LLM-as-a-judge: model (`upstream:model` for any configured upstream), max_tokens, timeout_s, concurrency,"
        " templates (name = prompt text). Judge calls are spans of kind `evaluator`, never the app's spend.",
        '{model = "gpt-4o-mini", concurrency = 4}',
    ),
    "extra": ("Free-form settings for extensions.", "{}"),
}

_ENV_PREFIX = "LLMLENS_"


def _coerce(name: str, raw: Any, annotation: str, source: str) -> Any:
    try:
        if annotation.startswith(("dict", "list")):
            value = json.loads(raw) if isinstance(raw, str) else raw
            expected = dict if annotation.startswith("dict") else list
            if not isinstance(value, expected):
                raise TypeError(f"expected a {expected.__name__}")
            return value
        if annotation == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if annotation == "int":
            if isinstance(raw, bool):
                raise ValueError("not an integer")
            return int(raw)
        if annotation == "float":
            return float(raw)
        if annotation.startswith("Path"):
            return None if raw in (None, "") else Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{name} from {source}: {exc}") from None


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then llmlens.toml (`--config`, `LLMLENS_CONFIG`, or ./llmlens.toml), then env, then flags."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    annotations = {f.name: str(f.type) for f in fields(Settings)}
    path = config_path or (Path(env["LLMLENS_CONFIG"]) if env.get("LLMLENS_CONFIG") else None)
    if path is None and Path("llmlens.toml").is_file():
        path = Path("llmlens.toml")
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SettingsError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
        for key, raw in doc.items():
            if key not in annotations:
                raise SettingsError(f"unknown setting {key!r} in {path}; known: {', '.join(annotations)}")
            values[key] = _coerce(key, raw, annotations[key], str(path))
    for name, annotation in annotations.items():
        env_name = _ENV_PREFIX + name.upper()
        if env_name in env:
            values[name] = _coerce(name, env[env_name], annotation, f"${env_name}")
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in annotations:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw, annotations[name], "the command line")
    settings = replace(Settings(), **values)
    if settings.simulated_provider not in ("on", "off", "auto"):
        raise SettingsError(f"simulated_provider must be on, off or auto, got {settings.simulated_provider!r}")
    if settings.auth not in ("on", "off", "auto"):
        raise SettingsError(f"auth must be on, off or auto, got {settings.auth!r}")
    if settings.trace_context_memory_mb < 1:
        raise SettingsError(f"trace_context_memory_mb must be at least 1, got {settings.trace_context_memory_mb}")
    if not 0 <= settings.port < 65536:
        raise SettingsError(f"port must be 0-65535, got {settings.port}")
    return settings


def settings_table() -> str:
    """The README's configuration table, in Markdown."""
    defaults = Settings()
    lines = [
        "| setting (`llmlens.toml`) | environment | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for f in fields(Settings):
        help_text, _ = SETTINGS_HELP[f.name]
        default = getattr(defaults, f.name)
        shown = "" if default in (None, "", {}, []) else f"`{default}`"
        lines.append(f"| `{f.name}` | `{_ENV_PREFIX}{f.name.upper()}` | {shown} | {help_text} |")
    return "\n".join(lines)
