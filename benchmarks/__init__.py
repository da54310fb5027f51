"""llmlens benchmarks: `python -m benchmarks` runs them all, prints a table and writes JSON results."""
