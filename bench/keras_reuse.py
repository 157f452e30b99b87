"""What reusing a traced train step per architecture saves in Keras (`coursekit.keras.train.REUSE_TRACES`).

    .venv/bin/python bench/keras_reuse.py [--repeat 3]

Each repeat runs, in one fresh process per mode (alternating plain / reuse), lesson 03's pattern:
five architectures of `run_two_branch` at scale x100 (the first fit of each: trained the plain way),
then the same five at x10 (the second: makes the stand-in) and at x1 (the third: reuses it). The
figure is the median over repeats of each pass's seconds and of the ratio reuse / plain within a
pair; saved in bench/results/keras_reuse.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "keras_reuse.json"

CHILD = r"""
import json, sys, time
import coursekit.keras.train as train
from coursekit.keras.experiments import run_two_branch
train.REUSE_TRACES = sys.argv[1] == "1"
run_two_branch(scale=100, fusion="add", report=False)  # warm-up: an architecture not timed below
options = [{}, {"norm": "batch"}, {"norm": "layer"}, {"norm": "group"}, {"branch_norm": "batch"}]
times = {}
for half, scale in (("first", 100), ("second", 10), ("third", 1)):
    t = time.perf_counter()
    for o in options:
        run_two_branch(scale=scale, **o)
    times[half] = time.perf_counter() - t
print(json.dumps(times))
"""


def run(reuse: bool) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, "1" if reuse else "0"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pairs = [(run(False), run(True)) for _ in range(args.repeat)]
    result = {}
    for half in ("first", "second", "third"):
        plain = statistics.median(p[half] for p, _ in pairs)
        reuse = statistics.median(r[half] for _, r in pairs)
        ratio = statistics.median(r[half] / p[half] for p, r in pairs)
        result[half] = {"plain_s": round(plain, 2), "reuse_s": round(reuse, 2), "ratio": round(ratio, 3)}
        print(f"{half:>6} fit of an architecture (5 runs): plain {plain:.2f} s, reuse {reuse:.2f} s, "
              f"reuse/plain {ratio:.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"repeat": args.repeat, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
