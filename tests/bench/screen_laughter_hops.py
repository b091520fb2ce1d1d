"""Screen a hop-level laughter model whose scores the verifier reads as summaries of the train.

Tried and not kept (docs/decisions.md, laughter).  From the cached windows and hops
(``train_laughter_verifier.dataset`` and ``hop_dataset``), no policy: a small tanh network
scores every loud hop from its mel shape and periodicity and those of the hops ``HOP_LAGS``
earlier (``dsp.laughter_verifier.hop_inputs``), trained on hop labels (inside a laugh's span
vs speech, other sounds and raised-pitch speech); the verifier reads the mean over the
train's loud hops, the top-10 mean and the share >= 0.5 (``hop_aggregates``) as 3 more
inputs.  Every model is a held-out fold model; the training folds' hop summaries come from
hop models that did not see that fold either (cross-fitted).  Prints clip AUCs (max window
score per clip), recorded laughs in stream speech with an accepted window that could pass
the pitch check (Deeply, hedgewars, packages), the share of those within 1.2 s, accepted
windows in laugh-free speech and among the raised-pitch windows.

Run: ``LAGS=3,6 HOPH=32 HOPEP=12 python tests/bench/screen_laughter_hops.py SEED
base,cross,cross1`` (``cross1``: the loud-hop mean alone; ``HOPSEED`` draws the hop models
apart from the verifiers).
"""

import os
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np
import train_laughter_verifier as T
from scipy.ndimage import maximum_filter1d
from scipy.stats import rankdata

from dsp import laughter_verifier as V
from dsp.laughter_verifier import VerifierWeights

OTHER = {"cough": "coughing", "scream": "screaming", "babycry": "crying", "sneeze": "sneezing"}
FLOOR_DB = float(V.mel_db(np.array([V._MEL_FLOOR]))[0])
C = V.HOP_CTX


def auc(p, n):
    p, n = np.asarray(p, float), np.asarray(n, float)
    r = rankdata(np.concatenate([p, n]))
    return float((r[: p.size].sum() - p.size * (p.size + 1) / 2) / (p.size * n.size))


def prep(recs):
    """Per record: hop inputs for all hops (padded at the stream start), hop levels, labels."""
    for r in recs:
        db = r["db"].astype(float)
        per = r["per"].astype(float)
        h0 = r["h0"]
        if h0 == -2:
            db = np.vstack([np.full((C + 110, V.N_MEL), FLOOR_DB), db])
            per = np.concatenate([np.zeros(C + 110), per])
            h0 -= C + 110
        r["H"] = V.hop_inputs(db, per)  # hops h0+C ..
        r["lev"] = db @ V._LEV_BAL[:, 0]  # hops h0 ..
        r["hh0"] = h0
        hops = h0 + C + np.arange(r["H"].shape[0])
        ts = (hops + 0.5) * 0.01
        lev = r["lev"][C:]
        loud = lev >= maximum_filter1d(lev, 101) - 20.0
        if r["kind"] == "clip":
            y = np.full(hops.size, 1.0 if r["label"] == "laughing" else 0.0)
            use = loud
        elif r["kind"] == "stream" and not np.isnan(r["onset_s"]):
            y = ((ts >= r["onset_s"]) & (ts <= r["end_s"])).astype(float)
            use = (
                loud
                & ((y == 1) | (ts < r["onset_s"] - 0.1) | (ts > r["end_s"] + 0.5))
                & (ts >= r["warmup_s"] - 10)
            )
        else:
            y = np.zeros(hops.size)
            use = loud & (ts >= r["warmup_s"] - (0 if r["kind"] == "raised" else 10))
        r["fy"], r["fuse"] = y, use


def frame_set(recs, excl, step=3):
    X, y = [], []
    for r in recs:
        if (
            r["fold"] in excl
            or r["label"] == "laughing"
            and r["name"].startswith("synth")
            and NO_SYNTH
        ):
            continue
        u = np.flatnonzero(r["fuse"])[::step]
        X.append(r["H"][u])
        y.append(r["fy"][u])
    return np.concatenate(X), np.concatenate(y)


def fit_hops(X, y, seed, hidden=16, epochs=6, batch=512, lr=3e-3, l2=1e-4):
    rng = np.random.default_rng(seed)
    mean = X.mean(0)
    scale = X.std(0) + 1e-6
    Z = (X - mean) / scale
    n, d = Z.shape
    pos = y >= 0.5
    w = np.where(pos, 0.5 / pos.sum(), 0.5 / (~pos).sum()) * n
    P = [
        rng.standard_normal((d, hidden)) / np.sqrt(d),
        np.zeros(hidden),
        rng.standard_normal(hidden) / np.sqrt(hidden),
        np.zeros(1),
    ]
    m = [np.zeros_like(p) for p in P]
    v = [np.zeros_like(p) for p in P]
    it = 0
    for _ep in range(epochs):
        order = rng.permutation(n)
        for b in range(0, n, batch):
            i = order[b : b + batch]
            it += 1
            w1, b1, w2, b2 = P
            h = np.tanh(Z[i] @ w1 + b1)
            p = 1 / (1 + np.exp(-(h @ w2 + b2)))
            g = w[i] * (p - y[i]) / i.size
            gh = np.outer(g, w2) * (1 - h * h)
            G = [Z[i].T @ gh + l2 * w1, gh.sum(0), h.T @ g + l2 * w2, np.array([g.sum()])]
            for j in range(4):
                m[j] = 0.9 * m[j] + 0.1 * G[j]
                v[j] = 0.999 * v[j] + 0.001 * G[j] ** 2
                P[j] = P[j] - lr * (m[j] / (1 - 0.9**it)) / (np.sqrt(v[j] / (1 - 0.999**it)) + 1e-8)
    w1, b1, w2, b2 = P
    return (w1 / scale[:, None], b1 - (mean / scale) @ w1, w2, float(b2[0]))


def hop_scores(model, H):
    w1, b1, w2, b2 = model
    return 1 / (1 + np.exp(-(np.tanh(H @ w1 + b1) @ w2 + b2)))


def aggregates(model, recs, sel=None):
    out = []
    for ri, r in enumerate(recs):
        if sel is not None and not sel[ri]:
            out.append(np.zeros((r["k"].size, 3)))
            continue
        p = hop_scores(model, r["H"]) if r["k"].size else None
        A = np.zeros((r["k"].size, 3))
        for j, (k, st) in enumerate(zip(r["k"], r["start"], strict=False)):
            span = V.span_hops(int(k), int(st))
            a = k - span + 1 - r["hh0"]  # row in lev of the span's first hop
            lev = r["lev"][a : a + span]
            loud = lev >= lev.max() - 20.0
            ps = p[a - C : a - C + span]
            A[j] = V.hop_aggregates(ps, loud)
        out.append(A)
    return out


def frame_auc(model, recs, folds):
    """Loud-hop AUC: laugh hops vs speech hops (held-out)."""
    p1, p0 = [], []
    for r in recs:
        if r["fold"] not in folds:
            continue
        u = r["fuse"]
        s = hop_scores(model, r["H"][u])
        yy = r["fy"][u]
        p1.append(s[yy == 1])
        p0.append(s[yy == 0])
    p1, p0 = np.concatenate(p1), np.concatenate(p0)
    rng = np.random.default_rng(0)
    return auc(
        rng.choice(p1, min(p1.size, 20000), replace=False),
        rng.choice(p0, min(p0.size, 20000), replace=False),
    )


NO_SYNTH = False
OPTS = {}


def fitw(X, y, seed, unused_extra=()):
    unused = [T._pulse_col(c) for c in T.UNUSED_INPUTS] + list(unused_extra)
    rng = np.random.default_rng(seed)
    mean = X.mean(axis=0)
    scale = X.std(axis=0) + 1e-6
    mean[unused], scale[unused] = 0.0, 1.0
    Z = (X - mean) / scale
    Z[:, unused] = 0.0
    n, d = Z.shape
    hidden = T.HIDDEN
    pos = y >= 0.5
    w = np.where(pos, 0.5 / pos.sum(), 0.5 / (~pos).sum())
    P = [
        rng.standard_normal((d, hidden)) / np.sqrt(d),
        np.zeros(hidden),
        rng.standard_normal(hidden) / np.sqrt(hidden),
        np.zeros(1),
    ]
    m = [np.zeros_like(p) for p in P]
    v = [np.zeros_like(p) for p in P]
    for it in range(1, T.EPOCHS + 1):
        w1, b1, w2, b2 = P
        h = np.tanh(Z @ w1 + b1)
        p = 1 / (1 + np.exp(-(h @ w2 + b2)))
        g = w * (p - y)
        gh = np.outer(g, w2) * (1 - h * h)
        G = [Z.T @ gh + T.L2 * w1, gh.sum(0), h.T @ g + T.L2 * w2, np.array([g.sum()])]
        for j in range(4):
            m[j] = 0.9 * m[j] + 0.1 * G[j]
            v[j] = 0.999 * v[j] + 0.001 * G[j] ** 2
            P[j] = P[j] - 0.01 * (m[j] / (1 - 0.9**it)) / (np.sqrt(v[j] / (1 - 0.999**it)) + 1e-8)
    w1, b1, w2, b2 = P
    w1[unused] = 0.0
    return VerifierWeights(mean, scale, w1, b1, w2, float(b2[0]), T.PROPOSE)


def trainw(X, y, fold, src, ds, folds, seed, unused_extra=()):
    sel = np.isin(fold, folds)
    X, y, fold, src = X[sel], y[sel], fold[sel], src[sel]
    thr = []
    for f in folds:
        inner = fold != f
        wts = fitw(X[inner], y[inner], seed, unused_extra)
        neg = (fold == f) & (y == 0) & np.isin(src, ["clip", "stream", "raised"]) & T.could_cue(X)
        hours = (ds.speech_s_by_fold.get(f, 0.0) + ds.raised_s_by_fold.get(f, 0.0)) / 3600
        thr.append(T.operating_point(wts.predict(X[neg]), hours))
    wts = fitw(X, y, seed, unused_extra)
    t = min(max(float(np.median(thr)), 1e-4), 1 - 1e-4)
    return VerifierWeights(
        wts.mean, wts.scale, wts.w1, wts.b1, wts.w2, wts.b2 - float(np.log(t / (1 - t))), T.PROPOSE
    )


def evaluate(recs, scores, Xs):
    """scores/Xs: per record, held-out window scores and features."""
    by, src = {}, []
    for r, s in zip(recs, scores, strict=False):
        if r["kind"] != "clip" or r["name"].startswith(("synth", "espeak")):
            continue
        lab = OTHER.get(r["label"], r["label"])
        by.setdefault(lab, []).append(float(s.max()) if s.size else 0.0)
        if lab == "laughing":
            src.append(
                "D"
                if r["name"].startswith("laughing/")
                else "H"
                if r["name"].startswith("hw-laugh:")
                else "P"
            )
    src = np.array(src)
    o = {
        k: auc(by["laughing"], by[k])
        for k in ["speech", "coughing", "crying", "screaming", "sighing"]
    }
    o["D"] = auc(np.array(by["laughing"])[src == "D"], by["speech"])
    found = {"D": 0, "H": 0, "P": 0}
    n = dict(found)
    early = 0
    fa = 0
    raised = 0
    for r, s, X in zip(recs, scores, Xs, strict=False):
        if r["kind"] == "clip" or not s.size:
            if (
                r["kind"] == "stream"
                and not np.isnan(r["onset_s"])
                and not str(r["laugh"]).startswith("synth")
            ):
                nm = str(r["laugh"])
                n[
                    "D"
                    if nm.startswith("laughing/")
                    else "H"
                    if nm.startswith("hw-laugh:")
                    else "P"
                ] += 1
            continue
        t = (r["k"] + 2.5) * 0.01
        acc = (s >= 0.5) & T.could_cue(X)
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
    by = " ".join(f"{k}{found[k]}/{n[k]}" for k in "DHP")
    return (f"AUC {aucs} Dsp {o['D']:.3f} | found {nf}/{sum(n.values())} ({by}) "
            f"w1.2 {early / max(nf, 1):.0%} fa {fa} raised {raised}")


if __name__ == "__main__":
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 14
    variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["base", "hop3", "cross"]
    hidden = int(os.environ.get("HOPH", "16"))
    lags = tuple(int(v) for v in os.environ.get("LAGS", "3,6").split(","))
    V.HOP_LAGS = lags
    V.HOP_CTX = lags[-1]
    V.N_HOP_INPUTS = (V.N_MEL + 1) * (1 + len(lags)) + len(lags)
    C = V.HOP_CTX
    globals()["C"] = C
    EP = int(os.environ.get("HOPEP", "6"))
    recs = T.hop_dataset()
    ds, _ = T.dataset()
    prep(recs)
    X = np.concatenate([r["X"] for r in recs])
    assert np.allclose(X, ds.X)
    fold = ds.fold
    y = ds.hard
    src = ds.source
    rid = np.concatenate([np.full(r["k"].size, i) for i, r in enumerate(recs)])
    F = T.N_FOLDS
    t0 = time.time()
    hseed = os.environ.get("HOPSEED", "")
    mcache = f"{T.CACHE_DIR}/hopmodels_{seed}_{hseed}_{hidden}_{NO_SYNTH}_{lags}_{EP}.pkl"
    if os.path.exists(mcache):
        models = pickle.loads(Path(mcache).read_bytes())
    else:
        models = {}
        for excl in [frozenset([f]) for f in range(F)] + [
            frozenset([f, g]) for f in range(F) for g in range(f + 1, F)
        ]:
            Xf, yf = frame_set(recs, excl)
            models[excl] = fit_hops(
                Xf, yf, int(os.environ.get("HOPSEED", seed)), hidden=hidden, epochs=EP
            )
            print("hop model excl", sorted(excl), Xf.shape, f"{time.time() - t0:.0f}s", flush=True)
        Path(mcache).write_bytes(pickle.dumps(models))
    for f in range(F):
        a = frame_auc(models[frozenset([f])], recs, [f])
        print(f"fold {f} held-out loud-hop AUC laugh vs not {a:.3f}", flush=True)
    # aggregates: held-out fold from M_{-f}; training fold g from M_{-f,-g} (cross-fitted)
    agg_ho = {
        f: np.concatenate(aggregates(models[frozenset([f])], recs, [r["fold"] == f for r in recs]))
        for f in range(F)
    }
    agg_x = {}
    for f in range(F):
        A = agg_ho[f].copy()
        for g in range(F):
            if g == f:
                continue
            A += np.concatenate(
                aggregates(models[frozenset([f, g])], recs, [r["fold"] == g for r in recs])
            )
        agg_x[f] = A
    print(f"aggregates {time.time() - t0:.0f}s", flush=True)

    def split(vals):
        return [vals[rid == i] for i in range(len(recs))]

    # hop model alone: held-out top-k mean as the score (no operating point: AUCs only)
    ho = np.zeros(len(y))
    for f in range(F):
        ho[fold == f] = agg_ho[f][fold == f, 1]
    print("hop top-k alone        ", evaluate(recs, split(ho), split(X)).split("|")[0], flush=True)
    ho0 = np.zeros(len(y))
    for f in range(F):
        ho0[fold == f] = agg_ho[f][fold == f, 0]
    print("hop loud mean alone    ", evaluate(recs, split(ho0), split(X)).split("|")[0], flush=True)
    for v in variants:
        s = np.zeros(len(y))
        for f in range(F):
            tr = [g for g in range(F) if g != f]
            if v == "base":
                Xv = X
                ue = ()
            elif v == "hop3":  # same aggregates on every window (training folds in-sample)
                Xv = np.hstack([X, agg_ho[f]])
                ue = ()
            elif v == "cross":  # training folds' aggregates cross-fitted
                Xv = np.hstack([X, agg_x[f]])
                ue = ()
            elif v == "cross1":  # the loud-hop mean alone
                Xv = np.hstack([X, agg_x[f]])
                ue = (94, 95)
            elif v == "cross2":  # the loud-hop mean and the share >= 0.5
                Xv = np.hstack([X, agg_x[f]])
                ue = (94,)
            elif v == "crossonly":  # aggregates + pulse measures only (instead of the summaries)
                Xv = np.hstack([X, agg_x[f]])
                ue = tuple(range(74))
            w = trainw(Xv, y, fold, src, ds, tr, seed, ue)
            s[fold == f] = w.predict(Xv[fold == f])
        print(
            f"{v:<10} s{seed}",
            evaluate(recs, split(s), split(X)),
            f"[{time.time() - t0:.0f}s]",
            flush=True,
        )
