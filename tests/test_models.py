"""The two-branch networks the lessons train: same weights in, same numbers out, in both halves,
for every fusion and normalization option; and the experiment runner's results line up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from parity_utils import copy_torch_to_keras, keras_weights_for, nhwc, rand_nchw, randomize_, to_numpy

from coursekit import keras as kk
from coursekit import torch as tk
from coursekit.models import FUSIONS

CASES = [(f, None, None) for f in FUSIONS] + [
    ("concat", "batch", None), ("concat", "layer", None), ("concat_1x1", "group", None),
    ("add", None, "batch"), ("concat", None, "group"),
]


def twin_models(fusion, norm, branch_norm, seed=0):
    opts = dict(n_classes=4, width=8, fusion=fusion, norm=norm, branch_norm=branch_norm, activations=("relu", "sigmoid"))
    torch.manual_seed(seed)
    t = randomize_(tk.two_branch_net(**opts), seed=seed)
    k = kk.two_branch_net(**opts)
    for tag, branch in (("a", t.branch_a), ("b", t.branch_b)):
        k.get_layer(f"branch_{tag}_conv").set_weights(keras_weights_for(branch[0]))
        if branch_norm is not None:
            k.get_layer(f"branch_{tag}_norm").set_weights(keras_weights_for(branch[2]))
    copy_torch_to_keras(t.fusion, k.get_layer("fusion"))
    k.get_layer("head_conv").set_weights(keras_weights_for(t.head[0]))
    k.get_layer("head_dense").set_weights([to_numpy(t.head[4].weight).T, to_numpy(t.head[4].bias)])
    return t, k


@pytest.mark.parametrize("fusion,norm,branch_norm", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_two_branch_net_parity(fusion, norm, branch_norm, training):
    t, k = twin_models(fusion, norm, branch_norm)
    xa, xb = rand_nchw(6, 1, 8, 8, seed=1), rand_nchw(6, 1, 8, 8, seed=2) * 3
    t.train(training)
    with torch.no_grad():
        out_t = t(torch.from_numpy(xa), torch.from_numpy(xb)).numpy()
    out_k = np.asarray(k([nhwc(xa), nhwc(xb)], training=training))
    np.testing.assert_allclose(out_k, out_t, atol=1e-5, rtol=1e-5)
    assert tk.count_params(t) == kk.count_params(k)


def test_bad_options_are_named():
    for mod in (tk, kk):
        with pytest.raises(ValueError, match=r"unknown fusion 'mul'; choose one of"):
            mod.two_branch_net(fusion="mul")
        with pytest.raises(ValueError, match=r"norm='batch' normalizes the concatenation, so it needs fusion='concat'"):
            mod.two_branch_net(fusion="add", norm="batch")
        with pytest.raises(ValueError, match=r"activations must be one name or a pair"):
            mod.two_branch_net(activations=("relu", "gelu"))


def test_run_two_branch_reports_the_same_things_in_both_halves():
    runs = [mod.run_two_branch(scale=10, epochs=2, n=256) for mod in (tk, kk)]
    for r in runs:
        assert r.history.epochs == 2 and set(r.history.metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert 0.0 <= r.accuracy_a <= 1.0 and 0.0 <= r.accuracy_b <= 1.0
        assert sum(r.report.grad_shares) == pytest.approx(1.0)
        assert "A-carried" in str(r)
    assert runs[0].n_params == runs[1].n_params
    with pytest.raises(ValueError, match="needs NCHW data"):
        tk.run_two_branch(data=__import__("coursekit").data.make_two_branch(n=64, layout="NHWC"))
