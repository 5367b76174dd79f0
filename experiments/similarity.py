"""Tables 5-7: cosine similarity of the penultimate features, within and between classes.

    python -m merjax.main --experiment=similarity  # the quick profile (its time: README)
    python -m merjax.main --experiment=similarity --profile=paper   # the paper's protocol (GPU)

For Vy-3CL, Vx-Vy-3CL and ResNet8, the features a fold's network computes for its held-out
samples (so no network sees the samples it describes) are compared with the cosine. Two tables
per network: the paper's "2 samples x 5 classes" (``per_class`` samples drawn per class from the
seed) and every held-out sample. Diagonal: mean similarity of distinct samples of
a class; off-diagonal: mean between classes. Writes ``table5/6/7.{csv,md}``,
``similarity_<net>.png``, ``report.md`` and ``summary.json`` (headline: Vy-3CL's accuracy, plus
each network's mean intra- and inter-class similarity).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from merjax import context, metrics, report
from merjax import paper_numbers as paper
from merjax.config import Config, base
from merjax.data import composite
from merjax.figures import similarity_figure
from merjax.report import num, pct

NETS = ("vy-3cl", "vxvy-3cl", "resnet8")


@dataclasses.dataclass(frozen=True)
class SimilarityConfig(Config):
    # Held-out samples per class in the paper-style tables: the paper's "2 samples x 5 classes"
    # (0: leave those tables out).
    per_class: int = 2


def config(profile: str) -> SimilarityConfig:
    cfg = base(profile, SimilarityConfig).replace(nets=NETS, headline="vy-3cl")
    if profile == "tiny":  # plumbing only
        cfg = cfg.replace(nets=("vy-3cl", "resnet2"))
    return cfg


def paper_style_subset(
    labels: np.ndarray, valid: np.ndarray, per_class: int, seed: int, num_classes: int
) -> np.ndarray:
    """Indices of ``per_class`` held-out samples of each class, drawn reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    picks = []
    for k in range(num_classes):
        pool = np.flatnonzero((labels == k) & valid)
        picks.append(rng.choice(pool, size=min(per_class, len(pool)), replace=False))
    return np.sort(np.concatenate(picks))


def run(ctx: context.Context) -> dict:
    cfg, data = ctx.cfg, ctx.data()
    rep = ctx.report("Feature similarity (paper Tables 5-7)", data)
    labels, k = list(data.class_names), data.num_classes
    on_paper_data = paper.comparable(cfg.composite)
    if not on_paper_data:
        rep.text(paper.PAPER_DATA_TEXT.format(title=composite.spec(cfg.composite).title))
    results, similarity = {}, {}
    ctx.expect_networks(len(cfg.nets))
    for net in cfg.nets:
        res = ctx.train_and_score(net, features=True)
        results[net] = res.row()
        feats = res.loso.features  # [S, N, D]
        sims_all, sims_pair = [], []
        for s, seed in enumerate(res.loso.seeds):
            valid = res.loso.preds[s] >= 0
            sims_all.append(metrics.class_similarity(feats[s][valid], data.labels[valid], k))
            if cfg.per_class:
                idx = paper_style_subset(data.labels, valid, cfg.per_class, seed, k)
                sims_pair.append(metrics.class_similarity(feats[s][idx], data.labels[idx], k))
        sim_all = np.nanmean(sims_all, axis=0)
        ref = paper.SIMILARITY.get(net) if on_paper_data else None
        number = paper.SIMILARITY_TABLES.get(net)
        name = f"table{number}" if number else f"similarity_{net}"
        tables = [("every held-out sample", sim_all, "")]
        if sims_pair:
            tables.insert(
                0,
                (
                    f"{cfg.per_class} held-out samples per class, as the paper",
                    np.nanmean(sims_pair, axis=0),
                    "_paper_style",
                ),
            )
        for what, sim, suffix in tables:
            rows = [
                [labels[i]]
                + [
                    f"{num(float(sim[i, j]), 4)} ({ref[i][j]:.4f})"
                    if ref
                    else num(float(sim[i, j]), 4)
                    for j in range(k)
                ]
                for i in range(k)
            ]
            csv_rows = [
                [labels[i]]
                + [v for j in range(k) for v in (float(sim[i, j]), ref[i][j] if ref else None)]
                for i in range(k)
            ]
            title = (
                (f"Table {number}: " if number else "")
                + f"cosine similarity, {net}, {what}"
                + (" — ours (paper)" if ref else "")
            )
            rep.table(
                name + suffix,
                ["class"] + labels,
                rows,
                title=title,
                csv_rows=csv_rows,
                csv_header=["class"] + [h for c in labels for h in (c, f"{c} paper")],
            )
        rep.figure(
            f"similarity_{net}",
            similarity_figure(sim_all, labels, f"{net}: cosine similarity, held-out features"),
            f"Cosine similarity of {net}'s penultimate features (every held-out sample).",
        )
        off = ~np.eye(k, dtype=bool)
        similarity[net] = {
            "intra": float(np.nanmean(np.diag(sim_all))),
            "inter": float(np.nanmean(sim_all[off])),
            "matrix": sim_all.tolist(),
            "paper_intra": float(np.mean(np.diag(ref))) if ref else None,
            "paper_inter": float(np.mean(np.asarray(ref)[off])) if ref else None,
        }
    rep.text(
        "Mean intra- and inter-class similarity (every held-out sample), ours (paper):",
        "\n".join(
            ["| net | intra | inter | accuracy | majority class |", "|---|---|---|---|---|"]
            + [
                f"| {n} | {num(v['intra'], 3)} ({num(v['paper_intra'], 3)}) | {num(v['inter'], 3)} "
                f"({num(v['paper_inter'], 3)}) | {pct(results[n]['accuracy'])} | "
                f"{pct(results[n]['majority'])} |"
                for n, v in similarity.items()
            ]
        ),
    )
    head = cfg.headline if cfg.headline in results else cfg.nets[0]
    return rep.write(report.summary("similarity", cfg, data, head, results, similarity=similarity))
