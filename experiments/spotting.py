"""Beyond the paper: spotting micro- and macro-expressions in long videos, and spot-then-recognize.

    python -m merjax.main --experiment=spotting                 # synthetic long videos, quick
    python -m merjax.main --experiment=spotting --profile=paper \\
        --casme3_root=/data/CASME3 --samm_lv_root=/data/SAMMLV --casme_sq_root=/data/CASME_sq

Every database given (CAS(ME)^3 Part A's long videos, SAMM Long Videos, CAS(ME)^2; without
roots, the synthetic long videos of merjax.data.synthetic_long in their layouts) is spotted by
two spotters: training-free (motion between frames t - k and t over facial regions, head
motion removed at the nose, peaks above a threshold relative to the video's own signal:
merjax.spotting.signal) and learned (a shallow three-stream network on the flows, SOFTNet's
idea, trained leave-one-subject-out with the vmapped trainer: merjax.spotting.learned). Scored
as MEGC scores spotting (IoU >= 0.5, precision / recall / F1 for micro, macro and overall, per
database and pooled), then spot-then-recognize: Vy-3CL, trained leave-one-subject-out on the
ground-truth micro-expressions (MEGC 2019's three classes), classifies each spotted micro
interval with the apex at its peak; STRS is spotting F1 x analysis F1 (MEGC 2023).

Writes ``spotting.{csv,md}``, ``strs.{csv,md}``, ``published.{csv,md}`` (published results
on real data, each with its protocol), one figure per video
(``video_<database>_<video>.png``: the signals, ground truth shaded by kind, spotted intervals,
blinks), ``spotted.csv`` (every spotted interval), ``report.md`` and ``summary.json``
(``f1_overall``, ``f1_micro``, ``f1_macro``, ``strs``: the learned spotter pooled over the
databases). The quick profile cuts, and says so: TV-L1 flows at 32x32, learned features 16x16
and 8 epochs, recognition at 16x16 for 20 epochs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from merjax import context, figures, report
from merjax import paper_numbers as paper
from merjax.config import Config, base
from merjax.data import longvideo, synthetic_long
from merjax.data.intervals import KINDS
from merjax.spotting import learned, metrics, pipeline, signal, spot_then_recognise, spotters
from merjax.train import TrainConfig

READS = (longvideo.LONG_VIDEOS,)


@dataclasses.dataclass(frozen=True)
class SpottingConfig(Config):
    """The spotters' and the recognition network's settings."""

    # merjax.spotting.spotters.NAMES, one row of the tables each (the headline: one of them)
    spotters: tuple[str, ...] = spotters.NAMES
    spot: signal.SpotSettings = signal.SpotSettings()
    learned: learned.LearnedSettings = learned.LearnedSettings()
    recognise: spot_then_recognise.RecogniseSettings = spot_then_recognise.RecogniseSettings()
    # The synthetic layouts spotted when no root is given (roots given are always spotted).
    databases: tuple[str, ...] = longvideo.DATABASES
    # The synthetic videos' faces: "drawn", or "photo" (a real photograph, found by landmarks).
    faces: str = "drawn"


def config(profile: str) -> SpottingConfig:
    cfg = base(profile, SpottingConfig).replace(composite=None, nets=(), headline="learned")
    if profile == "paper":  # a GPU: flows at 64x64, 28x28 features, longer training
        cfg = cfg.replace(
            spot=dataclasses.replace(cfg.spot, size=64),
            learned=dataclasses.replace(
                cfg.learned,
                feature_size=28,
                stride=1,
                train=dataclasses.replace(cfg.learned.train, epochs=40),
            ),
            recognise=dataclasses.replace(cfg.recognise, size=64, train=TrainConfig(augment=False)),
        )
    elif profile == "tiny":  # plumbing only: one layout (the loaders' tests read all three)
        cfg = cfg.replace(
            databases=("casme3",),
            spot=dataclasses.replace(cfg.spot, size=24),
            learned=dataclasses.replace(
                cfg.learned,
                feature_size=8,
                train=dataclasses.replace(cfg.learned.train, epochs=2),
            ),
            recognise=dataclasses.replace(
                cfg.recognise, size=8, train=TrainConfig(epochs=2, batch_size=16, augment=False)
            ),
        )
    return cfg


def validate(cfg: SpottingConfig) -> None:
    unknown = sorted(set(cfg.databases) - set(longvideo.DATABASES))
    if unknown or not cfg.databases:
        raise ValueError(
            f"databases: expected some of {list(longvideo.DATABASES)}, got {unknown or '()'}"
        )
    unknown = sorted(set(cfg.spotters) - set(spotters.NAMES))
    if unknown or not cfg.spotters:
        raise ValueError(
            f"spotters: expected some of {list(spotters.NAMES)}, got {unknown or '()'}"
        )
    if cfg.faces not in synthetic_long.FACES:
        raise ValueError(f"faces: expected one of {list(synthetic_long.FACES)}, got {cfg.faces!r}")
    if cfg.headline not in cfg.spotters:
        raise ValueError(f"headline {cfg.headline!r} is not one of spotters {list(cfg.spotters)}")


def run(ctx: context.Context) -> dict:
    # the long videos' motion is cached as clip flows are: a rerun reads it back
    with signal.cached_motion(ctx.cache_dir / "motion"):
        return _run(ctx)


def _run(ctx: context.Context) -> dict:
    cfg = ctx.cfg
    data = ctx.long_videos(cfg.databases, faces=cfg.faces)
    chosen = [
        spotters.build(name, cfg.spot, cfg.learned, cfg.execution, progress=ctx.progress)
        for name in cfg.spotters
    ]
    runs, info = {}, {}
    for db, videos in data.videos.items():
        runs[db], info[db] = pipeline.train_and_spot(
            videos, chosen, cfg.spot, cfg.recognise, cfg.execution, progress=ctx.progress
        )
    rep = ctx.report(
        "Spotting micro- and macro-expressions in long videos, and spot-then-recognize",
        _with_notes(data, runs),
        _protocol(cfg),
    )
    scores = _scores_table(rep, runs, cfg.spotters)
    strs = _strs_table(rep, runs, cfg.spotters)
    floors = _noise_table(rep, runs, cfg.spotters, cfg.spot.noise_margin)
    regions = _regions_text(rep, runs)
    _published_table(rep)
    rep.text(*_discussion(info, cfg.spotters, report.on_synthetic_data(data.source)))
    _figures(rep, runs, cfg.headline)
    _spotted_csv(rep, runs)
    head, head_strs = scores[(cfg.headline, "all")], strs[(cfg.headline, "all")]
    summary = {
        "experiment": "spotting",
        "headline": f"{cfg.headline} spotter, all databases",
        "line": (
            f"F1 overall {head['overall']['f1']:.3f} (micro {head['micro']['f1']:.3f}, macro "
            f"{head['macro']['f1']:.3f}), STRS {head_strs['strs']:.3f}"
        ),
        "f1_overall": head["overall"]["f1"],
        "f1_micro": head["micro"]["f1"],
        "f1_macro": head["macro"]["f1"],
        "strs": head_strs["strs"],
        "profile": cfg.profile,
        "data": data.source,
        "scores": {f"{s}/{d}": v for (s, d), v in scores.items()},
        "strs_by": {f"{s}/{d}": v for (s, d), v in strs.items()},
        "training": info,
        "noise_floor": floors,
        "regions": regions,
        "published": paper.SPOTTING_PUBLISHED,
        "notes": [n for rs in runs.values() for r in rs for n in r.video.notes],
        "config": dataclasses.asdict(cfg),
    }
    return rep.write(summary)


def _regions_text(rep, runs: dict) -> dict[str, int]:
    """Says where each database's facial regions came from: landmarks, or (faces without
    landmarks: no dlib, or a face only the Haar cascade finds) fixed fractions of the face box."""
    counts: dict[str, int] = {}
    lines = []
    for db, rs in runs.items():
        by: dict[str, int] = {}
        for r in rs:
            by[r.regions] = by.get(r.regions, 0) + 1
            counts[r.regions] = counts.get(r.regions, 0) + 1
        lines.append(
            f"- {longvideo.NAMES[db]}: "
            + ", ".join(f"{n} video(s) with regions from {k}" for k, n in sorted(by.items()))
        )
    rep.text("Facial regions (brows, eyes, nose, mouth, cheeks, chin):\n" + "\n".join(lines))
    return counts


def _with_notes(data, runs: dict):
    """What the report says first: the data's warnings, then what reading each video noticed."""
    notes = [r.note for rs in runs.values() for r in rs if r.note]
    return dataclasses.replace(data, warnings=data.warnings + notes)


def _pairs(runs: dict, spotter: str, db: str | None = None):
    """``(spotted, truth)`` per video; the truth's emotions as MEGC 2019's classes."""
    return [
        (r.spotted[spotter], spot_then_recognise.truth(r.video.intervals, d))
        for d, rs in runs.items()
        if db in (None, d)
        for r in rs
        if spotter in r.spotted
    ]


def _scores_table(rep: report.Report, runs: dict, names) -> dict:
    shown, raw, out = [], [], {}
    for spotter in names:
        for db in [*runs, "all"]:
            pairs = _pairs(runs, spotter, None if db == "all" else db)
            if not pairs:
                continue
            s = out[(spotter, db)] = metrics.scores(pairs)
            for k in (*KINDS, "overall"):
                s[k]["f1_ci"] = list(metrics.f1_interval(pairs, k))
            name = "all databases" if db == "all" else longvideo.NAMES[db]
            shown.append(
                [spotter, name, str(len(pairs))]
                + [
                    f"{s[k]['precision']:.3f} / {s[k]['recall']:.3f} / "
                    f"{report.cell(s[k]['f1'], None, s[k]['f1_ci'])} "
                    f"({s[k]['tp']}/{s[k]['fp']}/{s[k]['fn']})"
                    for k in (*KINDS, "overall")
                ]
            )
            raw.append(
                [spotter, db, len(pairs)]
                + [
                    v
                    for k in (*KINDS, "overall")
                    for v in [s[k][m] for m in ("tp", "fp", "fn", "precision", "recall", "f1")]
                    + s[k]["f1_ci"]
                ]
            )
    rep.table(
        "spotting",
        ["spotter", "database", "videos"]
        + [f"{k}: P / R / F1 [95% CI] (TP/FP/FN)" for k in (*KINDS, "overall")],
        shown,
        title="Spotting as MEGC scores it (IoU >= 0.5, one to one, counts pooled over videos; "
        "F1 intervals by resampling videos)",
        csv_header=["spotter", "database", "videos"]
        + [
            f"{k}_{m}"
            for k in (*KINDS, "overall")
            for m in ("tp", "fp", "fn", "precision", "recall", "f1", "f1_ci_low", "f1_ci_high")
        ],
        csv_rows=raw,
    )
    return out


def _strs_table(rep: report.Report, runs: dict, names) -> dict:
    shown, out = [], {}
    for spotter in names:
        for db in [*runs, "all"]:
            pairs = _pairs(runs, spotter, None if db == "all" else db)
            if not pairs:
                continue
            r = out[(spotter, db)] = metrics.strs(pairs)
            sp = r["spotting"]
            # the analysis scores are over the true-positive pairs only: their count says how
            # much an analysis F1 of 1.000 weighs
            matched = sp["tp"]
            shown.append(
                [
                    spotter,
                    "all databases" if db == "all" else longvideo.NAMES[db],
                    f"{sp['f1']:.3f} ({sp['tp']}/{sp['fp']}/{sp['fn']})",
                    f"{r['analysis']['f1']:.3f} (n = {matched})",
                    f"{r['analysis']['uf1']:.3f} (n = {matched})",
                    f"{r['strs']:.3f}",
                ]
            )
    rep.table(
        "strs",
        [
            "spotter",
            "database",
            "micro spotting F1 (TP/FP/FN)",
            "analysis F1 (n: true-positive pairs)",
            "analysis UF1 (n)",
            "STRS",
        ],
        shown,
        title="Spot-then-recognize on micro-expressions (Vy-3CL on each spotted interval, MEGC "
        "2019's three classes)",
    )
    return out


PUBLISHED_NAMES = {
    **longvideo.NAMES,
    "megc2022_cas": "MEGC 2022 test, CAS part",
    "megc2022_samm": "MEGC 2022 test, SAMM part",
}


def _noise_table(rep: report.Report, runs: dict, names, margin: float | None) -> dict:
    """noise_floor.{csv,md}: per database and kind, the videos' noise floors of motion (median
    over videos; the same for every spotter) and the peaks each spotter found above its
    threshold that the floor dropped."""
    if margin is None:
        rep.text("No noise floor (spot.noise_margin=None): peaks need only the threshold.")
        return {}
    shown, raw, out = [], [], {}
    for db, rs in runs.items():
        for kind in KINDS:
            floors = [
                next(f.floors[kind] for f in r.results.values() if kind in f.floors)
                for r in rs
                if any(kind in f.floors for f in r.results.values())
            ]
            if not floors:
                continue
            floor = float(np.median(floors))
            dropped = {
                n: sum(r.results[n].below_floor.get(kind, 0) for r in rs if n in r.results)
                for n in names
            }
            blinks = {
                n: sum(r.results[n].blinks.get(kind, 0) for r in rs if n in r.results)
                for n in names
            }
            out[f"{db}/{kind}"] = {"floor": floor, "dropped": dropped, "blinks": blinks}
            shown.append(
                [longvideo.NAMES[db], kind, f"{floor:.4f}"]
                + [f"{dropped[n]} / {blinks[n]}" for n in names]
            )
            raw.append([db, kind, floor, *dropped.values(), *blinks.values()])
    rep.table(
        "noise_floor",
        ["database", "kind", "noise floor (median over videos)"]
        + [f"{n}: peaks under it / blinks" for n in names],
        shown,
        title=(
            "Each video's own noise floor of motion (the signal's median + (sqrt(2 ln n) + "
            f"{margin:g}) noise spreads, the spread from frame-to-frame differences, at least "
            "the least motion): peaks above the threshold but under it are dropped, and so are "
            "peaks where the eyes move most (blinks)"
        ),
        csv_header=["database", "kind", "floor"]
        + [f"dropped_{n}" for n in names]
        + [f"blinks_{n}" for n in names],
        csv_rows=raw,
    )
    return out


def _published_table(rep: report.Report) -> None:
    """published.{csv,md}: the verified published spotting results, each with its protocol."""
    metric = ("micro", "macro", "overall", "strs")
    rows = paper.SPOTTING_PUBLISHED

    def cell(r, m):
        if m not in r:
            return ""
        classes = r.get("strs_classes") if m == "strs" else None
        return f"{r[m]:.4f}" + (f" ({classes} classes)" if classes else "")

    rep.table(
        "published",
        ["database", "method", "protocol", "micro F1", "macro F1", "overall F1", "STRS"],
        [
            [PUBLISHED_NAMES[r["database"]], r["method"], r["protocol"]]
            + [cell(r, m) for m in metric]
            for r in rows
        ],
        title="Published spotting results on real data (F1 at IoU >= 0.5; blank: not reported)",
        csv_header=["database", "method", "protocol", "f1_micro", "f1_macro", "f1_overall"]
        + ["strs", "strs_classes"],
        csv_rows=[
            [r["database"], r["method"], r["protocol"]]
            + [r.get(m, "") for m in (*metric, "strs_classes")]
            for r in rows
        ],
    )


def _trained_text(i: dict) -> str:
    """What a spotter's or the recogniser's training did, in words (its info dict)."""
    if not isinstance(i, dict):
        return str(i)
    parts = []
    if "items" in i:
        parts.append(f"{i['items']:,} items")
    if "positives" in i:
        parts.append(
            "positives " + ", ".join(f"{n:,} {kind}" for kind, n in i["positives"].items())
        )
    if "training_items" in i and i["training_items"] != i.get("items"):
        parts.append(f"{i['training_items']:,} training items")
    if "final_train_loss" in i:
        parts.append(f"final training loss {i['final_train_loss']:.3f}")
    if "held_out_accuracy_on_ground_truth" in i:
        parts.append(
            "held-out accuracy on the ground-truth intervals "
            f"{report.pct(i['held_out_accuracy_on_ground_truth'])}"
        )
    if "seconds" in i:
        parts.append(f"{i['seconds']:.0f} s")
    if i.get("trained") is False:
        parts.insert(0, "not trained")
    known = {"items", "positives", "training_items", "final_train_loss", "seconds", "trained"}
    known.add("held_out_accuracy_on_ground_truth")
    parts += [f"{k} {v}" for k, v in i.items() if k not in known]
    return ", ".join(parts) or "nothing to report"


def _discussion(info: dict, names, synthetic: bool) -> list[str]:
    what = "merjax's synthetic long videos" if synthetic else "the databases given by their roots"
    lines = [
        "Published results (table `published`) were read from their authors' own result tables: "
        f"{paper.SPOTTING_SOURCES}. Only the MEGC 2022 rows were measured on unseen "
        "test videos; the others, like ours, validate subject-wise over the whole database. "
        f"They are real data; ours here are {what}. Our STRS uses MEGC 2019's three "
        "classes; SFAMNet's table four; MEAN's table does not say.",
        "The threshold p and k are fixed beforehand for both spotters (p "
        "= mean + p (max - mean) of each video's own signal), never tuned on test subjects.",
    ]
    for db, i in info.items():
        trained = "; ".join(f"{n} spotter: {_trained_text(i[n])}" for n in names if n in i)
        lines.append(
            f"{longvideo.NAMES[db]}: {trained + '; ' if trained else ''}recognition: "
            f"{_trained_text(i.get('recognition'))}."
        )
    return lines


def _figures(rep: report.Report, runs: dict, headline: str) -> None:
    """One figure per video: every spotter's signals, the headline spotter's intervals (or,
    where it could not be fitted, the first spotter's)."""
    for db, rs in runs.items():
        for r in rs:
            v = r.video
            sec = np.arange(len(v.frames)) / v.fps
            to_s = {n: i / v.fps for i, n in enumerate(v.numbers)}

            def s(n):
                return to_s.get(n, (n - v.numbers[0]) / v.fps)

            curves, levels = {}, {}
            for spotter, res in r.results.items():
                for kind in KINDS:
                    name = f"{spotter} {kind}"
                    curves[name], levels[name] = res.signals[kind], res.level(kind)
            shown = headline if headline in r.spotted else next(iter(r.spotted))
            spotted = r.spotted[shown]
            rep.figure(
                f"video_{db}_{v.name.replace('/', '_')}",
                figures.spotting_figure(
                    sec,
                    curves,
                    levels,
                    [(s(g.onset), s(g.offset), g.kind) for g in v.intervals],
                    [(s(i.onset), s(i.offset), i.kind) for i in spotted],
                    [(s(a), s(b)) for a, b in v.blinks],
                    f"{longvideo.NAMES[db]} {v.name}: signals, ground truth, spotted ({shown})",
                ),
                f"{longvideo.NAMES[db]} {v.name}: each spotter's signal per kind (dashed: its "
                "threshold, or the noise floor where that is higher), ground truth shaded, the "
                f"{shown} spotter's intervals as bars, blinks.",
            )


def _spotted_csv(rep: report.Report, runs: dict) -> None:
    import csv
    import io

    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["database", "video", "spotter", "onset", "apex", "offset", "kind", "class"])
    for db, rs in runs.items():
        for r in rs:
            for spotter, found in r.spotted.items():
                for i in found:
                    w.writerow(
                        [
                            db,
                            r.video.name,
                            spotter,
                            i.onset,
                            i.apex,
                            i.offset,
                            i.kind,
                            i.emotion or "",
                        ]
                    )
    rep.add_file("spotted.csv", buf.getvalue().encode())


def _protocol(cfg: SpottingConfig) -> str:
    return (
        f"{cfg.profile} profile: {cfg.spot.describe()}; k = {cfg.spot.half_seconds[0]} s "
        f"(micro) and {cfg.spot.half_seconds[1]} s (macro) of frames, top {cfg.spot.top} "
        f"regions, eyes masked: {cfg.spot.mask_eyes}; {cfg.spot.flow.faces.describe()}; learned "
        f"spotter (its p {cfg.learned.threshold:g}) "
        f"{cfg.learned.feature_size}x{cfg.learned.feature_size} features, every "
        f"{cfg.learned.stride} frame(s), {cfg.learned.train.epochs} epochs, leave-one-subject-out "
        f"per database; recognition {cfg.recognise.net} at {cfg.recognise.size}x"
        f"{cfg.recognise.size}, {cfg.recognise.train.epochs} epochs"
    )
