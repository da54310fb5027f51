"""`llmlens demo --url URL`: send the demo traffic to a running server."""

from __future__ import annotations

import argparse

from ._common import add_target_options, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)
    parser.add_argument("--days", type=int, default=14, help="days of history to generate (default 14)")
    parser.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace) -> int:
    from llmlens.demo import demo_events

    target = resolve_target(args)
    events = demo_events(days=args.days, seed=args.seed)
    if target.url is None:
        from llmlens.codec.native import decode_events
        from llmlens.server import build_state

        state = build_state(target.settings, target.open_store(read_only=False))
        state.writer.start()
        try:
            decoded = decode_events(events, project=target.project or target.settings.project)
            state.pipeline.ingest_sync(decoded.spans, decoded.feedback)
        finally:
            state.writer.stop()
            state.store.close()
        print(f"wrote {len(events)} demo events to {target.settings.data_dir}")
        return 0
    sent = 0
    for start in range(0, len(events), 2000):
        target.post("/api/v1/ingest", {"events": events[start : start + 2000]})
        sent += len(events[start : start + 2000])
    print(f"sent {sent} demo events to {target.url}")
    return 0
