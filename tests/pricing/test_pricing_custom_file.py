"""Custom price files: TOML and YAML override the library; invalid files fail with clear messages."""

from __future__ import annotations

import hashlib
import pathlib

import pytest

from llmlens.model import CostSource, Span, SpanKind
from llmlens.pricing import LIBRARY_VERSION, PriceBook, PriceFileError

TOML = """
[[models]]
match = "my-llama-70b"
provider = "vllm"
input_per_mtok = 0.5
output_per_mtok = 1.5
cache_read_per_mtok = 0.05
cache_write_per_mtok = 0.6

[[models]]
match = "ft:gpt-4o*"
input_per_mtok = 3.75
output_per_mtok = 15
reasoning_per_mtok = 20

[[models]]
match = "gpt-4o"          # a negotiated discount overrides genai-prices
provider = "openai"
input_per_mtok = 2.0
output_per_mtok = 8.0
"""

YAML = """
models:
  - match: my-llama-70b
    provider: vllm
    input_per_mtok: 0.5
    output_per_mtok: 1.5
    cache_read_per_mtok: 0.05
    cache_write_per_mtok: 0.6
  - match: "ft:gpt-4o*"
    input_per_mtok: 3.75
    output_per_mtok: 15
    reasoning_per_mtok: 20
  - match: gpt-4o
    provider: openai
    input_per_mtok: 2.0
    output_per_mtok: 8.0
"""


ENTRY_A = "[[models]]\nmatch = 'a'\ninput_per_mtok = 1\noutput_per_mtok = 1\n"


def _span(**fields: object) -> Span:
    return Span(trace_id="a" * 32, span_id="b" * 16, kind=SpanKind.LLM.value, **fields)  # type: ignore[arg-type]


@pytest.fixture(params=[("prices.toml", TOML), ("prices.yaml", YAML), ("prices.yml", YAML)], ids=lambda p: p[0])
def price_file(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> pathlib.Path:
    name, text = request.param
    path = tmp_path / name
    path.write_text(text)
    return path


def test_custom_prices_override_the_library_and_are_versioned(price_file: pathlib.Path) -> None:
    book = PriceBook.load(price_file)
    sha = hashlib.sha256(price_file.read_bytes()).hexdigest()[:8]
    assert book.version == f"custom:{sha}+{LIBRARY_VERSION}"

    negotiated = _span(provider="openai", model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    book.price_span(negotiated)
    assert negotiated.cost_usd == pytest.approx(2.0 + 8.0)
    assert negotiated.cost_source == CostSource.CUSTOM
    assert negotiated.price_version == book.version

    # Not matched by the custom file: still the library's price, recorded under the same version.
    mini = _span(provider="openai", model="gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=0)
    book.price_span(mini)
    assert (mini.cost_usd, mini.cost_source) == (pytest.approx(0.15), CostSource.LIBRARY)
    # The provider filter: gpt-4o on Azure is not the negotiated OpenAI deal.
    azure = book.cost_for_usage(model="gpt-4o", provider="azure", prompt_tokens=1_000_000, completion_tokens=0)
    assert azure is not None and azure.source == CostSource.LIBRARY and azure.cost_usd == pytest.approx(2.5)


def test_self_hosted_model_with_cache_rates(price_file: pathlib.Path) -> None:
    book = PriceBook.load(price_file)
    priced = book.cost_for_usage(
        model="my-llama-70b",
        provider="vllm",
        prompt_tokens=10_000,  # includes 4,000 cache reads and 1,000 cache writes (OpenAI shape)
        cached_tokens=4_000,
        cache_write_tokens=1_000,
        completion_tokens=2_000,
    )
    assert priced is not None
    assert priced.source == CostSource.CUSTOM
    assert priced.matched == "custom:my-llama-70b"
    assert priced.cost_usd == pytest.approx((5_000 * 0.5 + 4_000 * 0.05 + 1_000 * 0.6 + 2_000 * 1.5) / 1e6)
    # Prefixed, dated and provider-less names find the same entry; another provider does not.
    for model, provider in [
        ("vllm/my-llama-70b", None),
        ("my-llama-70b-2025-01-31", "vllm"),
        ("MY-LLAMA-70B", None),
    ]:
        again = book.cost_for_usage(model=model, provider=provider, prompt_tokens=1, completion_tokens=1)
        assert again is not None and again.matched == "custom:my-llama-70b", model
    assert book.cost_for_usage(model="my-llama-70b", provider="together", prompt_tokens=1, completion_tokens=1) is None


def test_glob_and_optional_rate_defaults(price_file: pathlib.Path) -> None:
    book = PriceBook.load(price_file)
    span = _span(
        provider="openai",
        model="ft:gpt-4o-2024-08-06:acme::abc123",
        prompt_tokens=1_000,
        cached_tokens=400,
        completion_tokens=1_000,
        reasoning_tokens=300,
    )
    book.price_span(span)
    # No cache-read rate given: cached tokens cost the input rate. Reasoning has its own rate.
    assert span.cost_usd == pytest.approx((1_000 * 3.75 + 700 * 15 + 300 * 20) / 1e6)
    assert span.cost_source == CostSource.CUSTOM
    priced = book.cost_for_usage(
        model="ft:gpt-4o-mini:acme::x", provider="openai", prompt_tokens=1, completion_tokens=1
    )
    assert priced is not None
    assert (priced.cache_read_per_mtok, priced.cache_write_per_mtok, priced.reasoning_per_mtok) == (
        3.75,
        3.75,
        20,
    )


def test_repricing_with_a_new_book_replaces_computed_costs_but_keeps_the_callers(
    price_file: pathlib.Path,
) -> None:
    library_only = PriceBook.load()
    custom = PriceBook.load(price_file)
    computed = _span(provider="openai", model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=0)
    caller = _span(provider="openai", model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=0, cost_usd=9.0)
    for span in (computed, caller):
        library_only.price_span(span)
        custom.price_span(span)
    assert (computed.cost_usd, computed.cost_source, computed.price_version) == (
        pytest.approx(2.0),
        CostSource.CUSTOM,
        custom.version,
    )
    assert (caller.cost_usd, caller.computed_cost_usd, caller.cost_source) == (
        9.0,
        pytest.approx(2.0),
        "caller",
    )


def test_custom_prices_follow_the_anthropic_convention_for_anthropic_calls(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[models]]\nmatch = "claude-*"\ninput_per_mtok = 1\noutput_per_mtok = 2\ncache_read_per_mtok = 0.1\n'
    )
    book = PriceBook.load(path)
    priced = book.cost_for_usage(
        model="claude-sonnet-4-5",
        provider="anthropic",
        prompt_tokens=100,
        cached_tokens=1_000,
        completion_tokens=10,
    )
    assert priced is not None
    assert priced.cost_usd == pytest.approx((100 * 1 + 1_000 * 0.1 + 10 * 2) / 1e6)


def test_an_empty_file_is_valid(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("models = []\n")
    assert PriceBook.load(path).version.startswith("custom:")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "p.toml",
            "[[models]]\nmatch = 'x'\noutput_per_mtok = 1\n",
            r"models\[0\] \(match='x'\): field 'input_per_mtok': required",
        ),
        (
            "p.toml",
            "[[models]]\nmatch = 'x'\ninput_per_mtok = -1\noutput_per_mtok = 1\n",
            r"models\[0\] \(match='x'\): field 'input_per_mtok': must be a non-negative number",
        ),
        (
            "p.toml",
            "[[models]]\nmatch = 'x'\ninput_per_mtok = 'cheap'\noutput_per_mtok = 1\n",
            r"field 'input_per_mtok'.*got 'cheap'",
        ),
        (
            "p.toml",
            "[[models]]\nmatch = 'x'\ninput_per_mtok = true\noutput_per_mtok = 1\n",
            r"field 'input_per_mtok'",
        ),
        (
            "p.toml",
            "[[models]]\nmatch = 'x'\ninput_per_mtok = nan\noutput_per_mtok = 1\n",
            r"field 'input_per_mtok'",
        ),
        (
            "p.toml",
            "[[models]]\nmatch = 'x'\ninput_per_mtok = 1\noutput_per_mtok = 1\ncache_reads_per_mtok = 1\n",
            r"models\[0\] \(match='x'\): unknown field 'cache_reads_per_mtok'",
        ),
        (
            "p.toml",
            "[[models]]\ninput_per_mtok = 1\noutput_per_mtok = 1\n",
            r"models\[0\]: field 'match': required",
        ),
        (
            "p.toml",
            ENTRY_A + "[[models]]\nmatch = 'b'\nprovider = 3\ninput_per_mtok = 1\noutput_per_mtok = 1\n",
            r"models\[1\] \(match='b'\): field 'provider'",
        ),
        (
            "p.toml",
            ENTRY_A + "[[models]]\nmatch = 'A'\ninput_per_mtok = 2\noutput_per_mtok = 2\n",
            r"models\[1\] \(match='A'\): duplicates models\[0\]",
        ),
        ("p.toml", "[[models]\n", r"invalid TOML"),
        ("p.toml", "model = []\n", r"unknown top-level key 'model'"),
        ("p.toml", "models = 3\n", r"'models' must be a list"),
        (
            "p.yaml",
            "models:\n  - match: x\n    input_per_mtok: [1]\n    output_per_mtok: 1\n",
            r"models\[0\] \(match='x'\): field 'input_per_mtok'",
        ),
        ("p.yaml", "models:\n  - just-a-string\n", r"models\[0\]: must be a table/mapping"),
        ("p.yaml", "models: [\n", r"invalid YAML"),
        ("p.yaml", "- match: x\n", r"top-level 'models' list"),
        ("p.json", "{}", r"unsupported price file type '.json'"),
    ],
)
def test_invalid_files_fail_naming_file_entry_and_field(
    tmp_path: pathlib.Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PriceFileError, match=expected) as caught:
        PriceBook.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_fails_naming_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(PriceFileError, match=r"nope\.toml: cannot read price file"):
        PriceBook.load(path)
