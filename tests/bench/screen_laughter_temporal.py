"""Screen a temporal verifier: dilated 1-D convolutions over the last second of log-mel frames.

From the cached windows and hops (``train_laughter_verifier.dataset`` and ``hop_dataset``),
no policy.  Each proposal's frames (20 ms: pairs of the shared spectrum's 10 ms hops, power
averaged) carry 18 channels: the 16 mel bands in dB re the frame's level, the level re the
window's loudest frame (clipped at -40 dB) and the pitch tracker's periodicity.  Three
causal convolutions of width 3 (dilations ``DIL``, ``FILTERS`` tanh filters each) reach
``1 + 2 * sum(DIL)`` frames; their last layer is pooled over the proposed train (the same
span the summaries read, ``span_hops``; mean and max per filter) and joined with the
verifier's summary inputs before its hidden layer.  Trained end to end (numpy gradients,
minibatch Adam, seeded); every figure is from the outer held-out fold's model, its operating
point set by the training script's nested rule (inner folds, 10 accepted windows per hour
of held-out speech that could pass the pitch check).

Prints, as ``screen_laughter_hops.py`` did: clip AUCs (the clip's best window) vs speech,
coughing, crying, screaming, sighing and Deeply vs speech; recorded laughs in stream speech
with an accepted window that could pass the pitch check (Deeply, hedgewars, packages), the
share of those within 1.2 s of onset; accepted windows in laugh-free speech and among the
raised-pitch windows.

The convolutional model is the training script's (``--temporal``: ``fit_temporal``,
``laughter_verifier.conv_pool``), trained by its ``train`` as the benchmark trains its fold
models.  Run: ``OPENBLAS_NUM_THREADS=1 python tests/bench/screen_laughter_temporal.py SEED
base,conv`` (``FILT``, ``DIL``, ``EP``, ``L2C`` set the filters, dilations, epochs and the
convolutions' L2; about 4 min of CPU per seed at the shipped settings).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np
import train_laughter_verifier as T
from scipy.stats import rankdata

from dsp import laughter_verifier as V

OTHER = {"cough": "coughing", "scream": "screaming", "babycry": "crying", "sneeze": "sneezing"}


def auc(p, n):
    p, n = np.asarray(p, float), np.asarray(n, float)
    r = rankdata(np.concatenate([p, n]))
    return float((r[: p.size].sum() - p.size * (p.size + 1) / 2) / (p.size * n.size))


def evaluate(recs, scores, Xs):
    """scores/Xs: per record, held-out window scores and features."""
    by, src = {}, []
    for r, s in zip(recs, scores, strict=False):
        if r["kind"] != "clip" or r["name"].startswith(("synth", "espeak")):
            continue
        lab = OTHER.get(r["label"], r["label"])
        by.setdefault(lab, []).append(float(s.max()) if s.size else 0.0)
        if lab == "laughing":
            src.append("D" if r["name"].startswith("laughing/")
                       else "H" if r["name"].startswith("hw-laugh:") else "P")
    src = np.array(src)
    o = {k: auc(by["laughing"], by[k])
         for k in ["speech", "coughing", "crying", "screaming", "sighing"]}
    o["D"] = auc(np.array(by["laughing"])[src == "D"], by["speech"])
    o["P"] = auc(np.array(by["laughing"])[src == "P"], by["speech"])
    found = {"D": 0, "H": 0, "P": 0}
    n = dict(found)
    early = fa = raised = 0
    for r, s, X in zip(recs, scores, Xs, strict=False):
        if r["kind"] == "clip":
            continue
        t = (r["k"] + 2.5) * 0.01
        acc = (s >= 0.5) & T.could_cue(X) if s.size else np.zeros(0, bool)
        if r["kind"] == "raised":
            raised += int(acc.sum())
            continue
        if str(r["laugh"]).startswith("synth"):
            continue
        acc &= t >= r["warmup_s"]
        if np.isnan(r["onset_s"]):
            fa += int(acc.sum())
            continue
        nm = str(r["laugh"])
        k = "D" if nm.startswith("laughing/") else "H" if nm.startswith("hw-laugh:") else "P"
        n[k] += 1
        win = (t >= r["onset_s"] - 0.5) & (t <= r["end_s"] + 1.0)
        fa += int((acc & ~win).sum())
        if (acc & win).any():
            found[k] += 1
            if t[acc & win][0] - r["onset_s"] <= 1.2:
                early += 1
    nf = sum(found.values())
    aucs = " ".join(f"{k[:2]} {o[k]:.3f}" for k in
                    ("speech", "coughing", "crying", "screaming", "sighing"))
    byk = " ".join(f"{k}{found[k]}/{n[k]}" for k in "DHP")
    return (f"AUC {aucs} Dsp {o['D']:.3f} Psp {o['P']:.3f} | found {nf}/{sum(n.values())} "
            f"({byk}) w1.2 {early / max(nf, 1):.0%} fa {fa} raised {raised}")


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else T.SEED
    variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["base", "conv"]
    T.CONV_FILTERS = int(os.environ.get("FILT", T.CONV_FILTERS))
    T.CONV_DILATIONS = tuple(int(v) for v in os.environ.get(
        "DIL", ",".join(map(str, T.CONV_DILATIONS))).split(","))
    T.TEMPORAL_EPOCHS = int(os.environ.get("EP", T.TEMPORAL_EPOCHS))
    T.L2_CONV = float(os.environ.get("L2C", T.L2_CONV))
    T.TEMPORAL = True
    recs = T.hop_dataset()  # clips, streams and raised streams, in the windows' order
    ds, _ = T.dataset()
    X = ds.X
    t0 = time.time()
    rid = np.concatenate([np.full(r["k"].size, i) for i, r in enumerate(recs)])

    def split(vals):
        return [vals[rid == i] for i in range(len(recs))]

    unused = T.UNUSED_INPUTS
    for v in variants:  # base; conv; convonly: the convolutions alone (no summary read)
        d = ds if v.startswith("conv") else dataclasses.replace(ds, frames=None, span_fr=None)
        T.UNUSED_INPUTS = tuple(V.FEATURE_NAMES) if v == "convonly" else unused
        s = np.zeros(len(ds.hard))
        for f in range(T.N_FOLDS):
            w = T.train(d, [g for g in range(T.N_FOLDS) if g != f], seed=seed)
            ho = ds.fold == f
            s[ho] = w.predict(X[ho]) if d.frames is None else w.predict(
                X[ho], ds.frames[ho], ds.span_fr[ho])  # type: ignore[index]
        print(f"{v:<6} s{seed} {w.n_params}p", evaluate(recs, split(s), split(X)),
              f"[{time.time() - t0:.0f}s]", flush=True)


if __name__ == "__main__":
    main()
