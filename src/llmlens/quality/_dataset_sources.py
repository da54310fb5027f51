"""Dataset items from stored calls: the calls a trace-list filter picks, each with the chunks retrieved before
it in its trace (so that groundedness can be judged when the item is replayed)."""

from __future__ import annotations

from llmlens.store import Store

from ._datasets import DatasetItem, ItemError, item_from_call
from ._online import load_spans
from ._samples import context_before, trace_spans
from ._selection import CallSelection, select_calls


def items_from_calls(
    store: Store, project: str, selection: CallSelection, *, expected_from_output: bool = False
) -> tuple[list[DatasetItem], list[str]]:
    """(items, reasons calls were left out) for the calls the selection picks, in its order."""
    ids = select_calls(store, project, selection)
    rows = {r["span_id"]: r for r in load_spans(store, project, ids)}
    traces = trace_spans(store, project, [str(r["trace_id"]) for r in rows.values()])
    items: list[DatasetItem] = []
    skipped: list[str] = []
    for span_id in ids:
        row = rows.get(span_id)
        if row is None:
            continue
        context = context_before(row, traces.get(str(row["trace_id"]), []))
        try:
            items.append(item_from_call(row, context, expected_from_output=expected_from_output))
        except ItemError as exc:
            skipped.append(str(exc))
    return items, skipped
