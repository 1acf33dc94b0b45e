"""Run every method's side-by-side benchmark (udl vs the peers named in its issue, same run) and
save the table of ratios. Usage::

    python benchmarks/side_by_side.py [--quick] [--device cpu|cuda] [--only NAME ...]

Writes ``benchmarks/results/side_by_side_<device>.json`` (ratio = peer seconds / udl seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from udl.bench import device_name, format_table, run_benchmarks, save_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", nargs="+")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = run_benchmarks(only=args.only, quick=args.quick, device=args.device)
    print(f"device: {device_name(args.device)}")
    print(format_table(rows))
    out = args.out or Path(__file__).parent / "results" / f"side_by_side_{args.device}.json"
    print(f"saved to {save_rows(rows, out, args.device)}")


if __name__ == "__main__":
    main()
