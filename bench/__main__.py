"""``make bench``: every benchmark, one table of ratios against baselines of the same run.

Usage: ``python -m bench [standards] [registry] [fanout] [sender] [sync] [transparency] [review]
[languages] [scale] [--quick]`` (default: all). ``--quick`` runs the scale curves' two smaller sizes.
"""

from __future__ import annotations

import importlib
import os
import sys

from bench.common import Row, fmt

SCENARIOS = [
    "standards",
    "registry",
    "fanout",
    "sender",
    "sync",
    "transparency",
    "review",
    "languages",
    "scale",
]


def main(argv: list[str]) -> int:
    if "--quick" in argv:
        os.environ["BENCH_QUICK"] = "1"
    wanted = [a for a in argv if not a.startswith("--")] or SCENARIOS
    rows: list[Row] = []
    for name in wanted:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows.extend(module.run())
    width = max((len(r.name) for r in rows), default=10)
    print()
    print(f"{'benchmark':<{width}}  {'value':>12}  {'unit':<8}  {'baseline':>12}  {'ratio':>7}  target")
    print("-" * (width + 62))
    for r in rows:
        verdict = "" if r.ok is None else ("  ok" if r.ok else "  MISSED")
        print(
            f"{r.name:<{width}}  {fmt(r.value):>12}  {r.unit:<8}  {fmt(r.baseline):>12}  "
            f"{fmt(r.ratio):>7}  {r.target}{verdict}"
        )
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
