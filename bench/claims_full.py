"""Full-size claim numbers, committed as bench/claims-full.json (issue 15): what the lessons' budget-
robust claims measure at the run size a GPU gets (`COURSEKIT_RUN_SIZE=full`: 24 epochs on 4096
samples), with the date and the machine.

    .venv/bin/python bench/claims_full.py        # about 4 minutes on 2 CPU cores

Covered so far: lesson 02, "lost, or only late?" (steps until branch A's half reaches 90%, per scale,
both frameworks, seeds 0 and 1, over 3x the run's epochs). tests/test_claims_02_budget.py asserts the
same numbers at both run sizes; this file records them.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "claims-full.json"

CHILD = r"""
import json, sys
from coursekit.runsize import run_size
fw = sys.argv[1]
if fw == "torch":
    from coursekit import torch as ck
else:
    from coursekit import keras as ck
rs = run_size()
out = {}
for seed in (0, 1):
    for scale in (1, 10, 100, 1000):
        c = ck.branch_a_curve(scale=scale, epochs=3 * rs.epochs, n=rs.n_train, seed=seed)
        out[f"seed {seed}, x{scale}"] = {"steps_to_90": c.steps_to(0.9), "steps_per_epoch": c.steps_per_epoch,
                                         "accuracy_a_at_budget": round(c.accuracy_a[rs.epochs - 1], 4),
                                         "accuracy_a_at_3x": round(c.accuracy_a[-1], 4)}
print(json.dumps({"run_size": {"n_train": rs.n_train, "epochs": rs.epochs}, "lesson_02_branch_a": out}))
"""


def main() -> None:
    env = {**os.environ, "COURSEKIT_RUN_SIZE": "full"}
    results = {}
    for fw in ("torch", "keras"):
        proc = subprocess.run([sys.executable, "-c", CHILD, fw], capture_output=True, text=True, env=env, cwd=ROOT,
                              check=True)
        results[fw] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(fw, json.dumps(results[fw]["lesson_02_branch_a"]))
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "python": platform.python_version(), "device": "CPU"}
    OUT.write_text(json.dumps({"date": datetime.date.today().isoformat(), "machine": machine, **results},
                              indent=2) + "\n")
    print("saved", OUT)


if __name__ == "__main__":
    main()
