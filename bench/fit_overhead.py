"""Overhead of coursekit's `fit` helpers over training by hand.

    .venv/bin/python bench/fit_overhead.py [--repeat 5] [--n 2048] [--epochs 3] [--only torch|keras]

Budget: `coursekit.torch.train.fit` <= 5% slower than a hand-written loop, and
`coursekit.keras.train.fit` <= 5% slower than a plain `model.compile(); model.fit()`, on the
same small CNN and data (synthetic 16x16 images, batch 64, a 512-sample validation set).

Each framework runs in its own subprocess (so neither one's thread pools slow the other).
Runs alternate (baseline, helper) `--repeat` times after one untimed warm-up pair; every run
starts from the same initial weights. The figure is the median over repeats of the ratio
helper / baseline of one pair, printed as a table and saved in bench/results/fit_overhead.json.
The helper runs with its progress bar on (the notebook default), written to a null stream.

The torch baseline is the loop a careful student writes: tensors made once, a seeded
randperm per epoch, loss and accuracy summed on the device, a no_grad validation pass.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "fit_overhead.json"
BUDGET = 1.05


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Learnable synthetic NCHW images: labels come from a fixed random projection."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + 512, 1, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16 * 16, 10))
    y = (x.reshape(len(x), -1) @ w).argmax(1).astype(np.int64)
    return x[:n], y[:n], x[n:], y[n:]


def _quiet():
    # The progress bar is drawn as in a notebook, but into a null stream.
    return contextlib.redirect_stdout(io.StringIO())


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------


def bench_torch(args) -> dict:
    import torch
    from torch import nn

    from coursekit.torch.train import fit

    torch.manual_seed(0)
    device = torch.device("cpu") if args.cpu else None
    xtr, ytr, xva, yva = make_data(args.n)

    def build() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
        )

    init = build().state_dict()

    from coursekit.torch.device import get_device

    dev = device or get_device()

    def hand() -> float:
        model = build()
        model.load_state_dict(init)
        model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.as_tensor(xtr).to(dev), torch.as_tensor(ytr).to(dev)
        xv, yv = torch.as_tensor(xva).to(dev), torch.as_tensor(yva).to(dev)
        g = torch.Generator().manual_seed(0)
        bs, n = args.batch_size, len(y)
        log = []
        for _ in range(args.epochs):
            model.train()
            total = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev)
            perm = torch.randperm(n, generator=g).to(dev)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                xb, yb = x[idx], y[idx]
                opt.zero_grad(set_to_none=True)
                out = model(xb)
                loss = nn.functional.cross_entropy(out, yb)
                loss.backward()
                opt.step()
                total += loss.detach() * len(yb)
                correct += (out.detach().argmax(1) == yb).sum()
            model.eval()
            vtotal = torch.zeros((), device=dev)
            vcorrect = torch.zeros((), device=dev)
            with torch.no_grad():
                for i in range(0, len(yv), bs):
                    out = model(xv[i : i + bs])
                    vtotal += nn.functional.cross_entropy(out, yv[i : i + bs]) * len(yv[i : i + bs])
                    vcorrect += (out.argmax(1) == yv[i : i + bs]).sum()
            log.append((total.item() / n, correct.item() / n, vtotal.item() / len(yv), vcorrect.item() / len(yv)))
        return log[-1][0]

    def helper() -> float:
        model = build()
        model.load_state_dict(init)
        with _quiet():
            h = fit(model, (xtr, ytr), (xva, yva), epochs=args.epochs, batch_size=args.batch_size, device=dev)
        return h.last("loss")

    return _alternate("torch", "hand loop", hand, helper, args) | {"device": str(dev), "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------------------------
# keras
# --------------------------------------------------------------------------------------------


def bench_keras(args) -> dict:
    from coursekit.keras import _tf
    from coursekit.keras.train import fit

    keras = _tf.keras
    L = keras.layers
    keras.utils.set_random_seed(0)
    xtr, ytr, xva, yva = make_data(args.n)
    xtr, xva = xtr.transpose(0, 2, 3, 1).copy(), xva.transpose(0, 2, 3, 1).copy()

    def build():
        return keras.Sequential([
            keras.Input((16, 16, 1)),
            L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(),
            L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(),
            L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10),
        ])

    init = build().get_weights()

    def fresh():
        model = build()
        model.set_weights(init)
        return model

    def plain() -> float:
        model = fresh()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        h = model.fit(
            xtr, ytr, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
            validation_data=(xva, yva), verbose=0,
        )
        return h.history["loss"][-1]

    def helper() -> float:
        model = fresh()
        with _quiet():
            h = fit(model, (xtr, ytr), (xva, yva), epochs=args.epochs, batch_size=args.batch_size)
        return h.last("loss")

    tf = _tf.tf
    return _alternate("keras", "model.fit", plain, helper, args) | {
        "device": "GPU" if _tf.GPUS else "CPU", "threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _alternate(framework: str, baseline_name: str, baseline, helper, args) -> dict:
    baseline(), helper()  # warm-up: first-call costs (kernels, tracing caches) are not overhead
    base_t, help_t, ratios = [], [], []
    for i in range(args.repeat):
        # Alternate which goes first, so a drift in machine speed hits both alike.
        if i % 2 == 0:
            b = _timed(baseline)
            h = _timed(helper)
        else:
            h = _timed(helper)
            b = _timed(baseline)
        base_t.append(b)
        help_t.append(h)
        ratios.append(h / b)
    return {
        "framework": framework,
        "baseline": baseline_name,
        "baseline_s": base_t,
        "fit_s": help_t,
        "ratios": ratios,
        "median_baseline_s": statistics.median(base_t),
        "median_fit_s": statistics.median(help_t),
        "median_ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(help_t) / statistics.median(base_t),
        "budget": BUDGET,
        "within_budget": statistics.median(ratios) <= BUDGET,
        "n": args.n, "epochs": args.epochs, "batch_size": args.batch_size, "repeat": args.repeat,
    }


def _run_child(framework: str, args) -> dict:
    cmd = [
        sys.executable, __file__, "--only", framework, "--child", "--repeat", str(args.repeat),
        "--n", str(args.n), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
    ] + (["--cpu"] if args.cpu else [])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} benchmark failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", choices=("torch", "keras"))
    parser.add_argument("--cpu", action="store_true", help="torch on CPU even when a GPU is present")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = bench_torch(args) if args.only == "torch" else bench_keras(args)
        print(json.dumps(result))
        return 0

    frameworks = [args.only] if args.only else ["torch", "keras"]
    results = {fw: _run_child(fw, args) for fw in frameworks}
    print(f"{'framework':<10}{'baseline':<12}{'device':<8}{'baseline s':>11}{'fit s':>9}{'fit/base':>10}  budget")
    for fw, r in results.items():
        ok = "ok" if r["within_budget"] else "OVER"
        print(
            f"{fw:<10}{r['baseline']:<12}{r['device']:<8}{r['median_baseline_s']:>11.3f}"
            f"{r['median_fit_s']:>9.3f}{r['median_ratio']:>10.3f}  <= {BUDGET:.2f} {ok}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"python": sys.version.split()[0], "results": results}
    if RESULTS.exists() and args.only:
        try:
            old = json.loads(RESULTS.read_text()).get("results", {})
            payload["results"] = old | results
        except (ValueError, AttributeError):
            pass
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(r["within_budget"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
