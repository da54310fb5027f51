"""`llmlens compare`: replay a set of stored calls against several models and print the comparison."""

from __future__ import annotations

import argparse

from .replay import add_compare_arguments, run_compare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_compare_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_compare(args)
