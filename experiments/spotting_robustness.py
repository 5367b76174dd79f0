"""Beyond the paper: how both spotters hold up on long videos they were not tuned on.

    python -m merjax.main --experiment=spotting_robustness          # synthetic, quick
    python -m merjax.main --experiment=spotting_robustness --set=sweep.parameters=noise,fps

Synthetic long videos (merjax.data.synthetic_long) with one generator parameter changed at a
time from the default -- expression amplitudes, sensor noise, head drift and slow turns, blink
rate, expression density, frame rate, lighting flicker, drawn or photographed faces
(merjax.spotting.robustness.SWEEP) -- all test settings from one seed, so that they differ only
in what is swept. The training-free spotter needs no training; the learned one trains once, on
a mixture of videos of their own subjects whose every parameter is drawn at random over the
swept range, and is scored on every setting (it never trains on a test video, nor on only the
setting it is scored on). Then four videos with no expression at all (still, drift only, blinks
only, noise only), where every spot is false.

Writes ``robustness.{csv,md}`` (per setting and spotter: F1 micro / macro / overall, false spots
per minute), one figure per parameter (``sweep_<parameter>.png``, the default marked),
``no_expression.{csv,md}``, ``report.md`` and ``summary.json``.
"""

from __future__ import annotations

import dataclasses

from merjax import context, figures, runner
from merjax.config import Config, base
from merjax.data import synthetic_long
from merjax.data.intervals import KINDS
from merjax.spotting import learned, robustness, signal, spotters

READS = ()  # no database: it writes its own synthetic videos
SCORES = ("micro", "macro", "overall")


@dataclasses.dataclass(frozen=True)
class RobustnessConfig(Config):
    """The sweep, and the spotters' settings (the spotting experiment's for the profile)."""

    sweep: robustness.Sweep = robustness.Sweep()
    spotters: tuple[str, ...] = spotters.NAMES
    spot: signal.SpotSettings = signal.SpotSettings()
    learned: learned.LearnedSettings = learned.LearnedSettings()


def config(profile: str) -> RobustnessConfig:
    spotting = runner.load("spotting").config(profile)
    cfg = base(profile, RobustnessConfig).replace(
        composite=None, nets=(), headline="learned", spot=spotting.spot, learned=spotting.learned
    )
    if profile == "tiny":  # plumbing only, on crops of the size the quick profile reports:
        # at the spotting tiny profile's 24x24 the flow's residual on a drifting, turning head
        # passes the least motion (docs/spotting.md, "Robustness").
        cfg = cfg.replace(
            spot=dataclasses.replace(cfg.spot, size=signal.SpotSettings().size),
            sweep=robustness.Sweep(
                parameters=("noise",),
                seconds=8.0,
                subjects=1,
                train_videos=2,
                train_seconds=8.0,
                no_expression_seconds=20.0,
            ),
        )
    return cfg


def validate(cfg: RobustnessConfig) -> None:
    unknown = sorted(set(cfg.spotters) - set(spotters.NAMES))
    if unknown or not cfg.spotters:
        raise ValueError(f"spotters: expected some of {list(spotters.NAMES)}")


def run(ctx: context.Context) -> dict:
    # the long videos' motion is cached as clip flows are: a rerun reads it back
    with signal.cached_motion(ctx.cache_dir / "motion"):
        return _run(ctx)


def _run(ctx: context.Context) -> dict:
    cfg, sweep = ctx.cfg, ctx.cfg.sweep
    size = synthetic_long.SPECS["full"] if cfg.synthetic == "full" else synthetic_long.SPECS["tiny"]
    seed = 1000 * cfg.synthetic_seed
    tests = sweep.settings()
    mixture = sweep.mixture(cfg.synthetic_seed)
    quiet = list(robustness.NO_EXPRESSION.items())
    common = {"base": size, "progress": ctx.say}
    videos = robustness.load(
        ctx.cache_dir, settings=tests, seconds=sweep.seconds, subjects=sweep.subjects,
        seeds=[seed] * len(tests), **common,
    )  # fmt: skip
    train = robustness.load(
        ctx.cache_dir, settings=mixture, seconds=sweep.train_seconds, subjects=1,
        seeds=[seed + 100 + i for i in range(len(mixture))], **common,
    )  # fmt: skip
    none = robustness.load(
        ctx.cache_dir, settings=quiet, seconds=sweep.no_expression_seconds, subjects=1,
        seeds=[seed + 200] * len(quiet), **common,
    )  # fmt: skip
    chosen = [
        spotters.build(n, cfg.spot, cfg.learned, cfg.execution, progress=ctx.say)
        for n in cfg.spotters
    ]
    size_f = max(s.feature_size for s in chosen)
    prepared = {}
    for group in (train, videos, none):
        for name, vs in group.items():
            prepared[name] = [spotters.prepare(v, cfg.spot, size_f) for v in vs]
        ctx.say(f"read {sum(len(v) for v in group.values())} video(s)")
    scored = [p for name in [*videos, *none] for p in prepared[name]]
    everything = [p for ps in prepared.values() for p in ps]
    results, info = {}, {}
    for spotter in chosen:
        # One run: trains on the mixture, holds out every test video.
        fitted, info[spotter.name] = spotter.fit(everything, [[p.video.subject for p in scored]])
        if fitted is None:
            continue
        for name in [*videos, *none]:
            results[(spotter.name, name)] = [
                (spotter.intervals(spotter.score(fitted, p), p).intervals, p.video.intervals)
                for p in prepared[name]
            ]
    table = {
        key: robustness.scores(pairs, _minutes(prepared[key[1]])) for key, pairs in results.items()
    }
    rep = ctx.report(
        "Spotting on long videos it was not tuned on: a sweep of the generator's settings",
        _data(videos, train, none),
        _protocol(cfg, mixture),
    )
    _sweep_table(rep, table, tests, cfg.spotters)
    _no_expression_table(rep, table, quiet, cfg.spotters)
    for p in sweep.parameters:
        _figure(rep, table, p, cfg.spotters)
    head = table.get((cfg.headline, "default")) or next(iter(table.values()))
    worst = {
        n: max(table[(n, q)]["false_per_minute"] for q, _ in quiet)
        for n in cfg.spotters
        if (n, quiet[0][0]) in table
    }
    summary = {
        "experiment": "spotting_robustness",
        "headline": f"{cfg.headline} spotter, default setting",
        "line": (
            f"default setting F1 overall {head['overall']['f1']:.3f} (micro "
            f"{head['micro']['f1']:.3f}); most false spots per minute with no expression: "
            + ", ".join(f"{n} {v:.2f}" for n, v in worst.items())
        ),
        "scores": {f"{s}/{n}": v for (s, n), v in table.items()},
        "no_expression_worst_per_minute": worst,
        "mixture": dict(mixture),
        "training": info,
        "config": dataclasses.asdict(cfg),
    }
    return rep.write(summary)


def _minutes(prepared) -> float:
    return sum(len(p.video.frames) / p.video.fps for p in prepared) / 60


def _data(videos, train, none):
    n = sum(len(v) for v in videos.values())
    source = (
        f"synthetic long videos: {n} test video(s) in {len(videos)} settings, "
        f"{sum(len(v) for v in train.values())} training video(s) of a random mixture, "
        f"{len(none)} with no expression"
    )
    return type("Data", (), {"source": source, "warnings": []})()


def _row(s: dict) -> list[str]:
    return [f"{s[k]['f1']:.3f}" for k in SCORES] + [
        f"{s['false_per_minute']:.2f}",
        f"{s['overall']['tp']}/{s['overall']['fp']}/{s['overall']['fn']}",
    ]


def _sweep_table(rep, table, tests, names) -> None:
    shown, raw = [], []
    for name, _ in tests:
        for n in names:
            if (n, name) in table:
                s = table[(n, name)]
                shown.append([name, n, *_row(s)])
                raw.append(
                    [name, n]
                    + [s[k]["f1"] for k in SCORES]
                    + [s["false_per_minute"]]
                    + [s[k][m] for k in (*KINDS, "overall") for m in ("tp", "fp", "fn")]
                )
    rep.table(
        "robustness",
        ["setting", "spotter", "F1 micro", "F1 macro", "F1 overall", "false spots / min",
         "TP/FP/FN"],
        shown,
        title="Each setting (the default with one parameter changed): spotting as MEGC scores "
        "it, and false spots per minute of video",
        csv_header=["setting", "spotter", "f1_micro", "f1_macro", "f1_overall",
                    "false_per_minute"]
        + [f"{k}_{m}" for k in (*KINDS, "overall") for m in ("tp", "fp", "fn")],
        csv_rows=raw,
    )  # fmt: skip


def _no_expression_table(rep, table, quiet, names) -> None:
    shown = [
        [q, n, f"{table[(n, q)]['false_per_minute']:.2f}", str(table[(n, q)]["overall"]["fp"])]
        for q, _ in quiet
        for n in names
        if (n, q) in table
    ]
    rep.table(
        "no_expression",
        ["video", "spotter", "false spots / min", "false spots"],
        shown,
        title="Videos with no expression: every spot is false (the bar: under one a minute)",
    )


def _figure(rep, table, parameter: str, names) -> None:
    levels = robustness.SWEEP[parameter]
    default = robustness.DEFAULT[parameter]
    key = {v: "default" if v == default else f"{parameter}={v}" for v in levels}
    series = {}
    for n in names:
        for k in SCORES:
            series[f"{n} F1 {k}"] = [table[(n, key[v])][k]["f1"] for v in levels]
        series[f"{n} false spots / min"] = [table[(n, key[v])]["false_per_minute"] for v in levels]
    rep.figure(
        f"sweep_{parameter}",
        figures.sweep_figure(
            [str(v) for v in levels],
            series,
            levels.index(default),
            f"Spotting against {parameter} (default {default})",
        ),
        f"{parameter}: each spotter's F1 (micro, macro, overall; left) and false spots per "
        f"minute (right) against the setting; the default ({default}) marked.",
    )


def _protocol(cfg: RobustnessConfig, mixture) -> str:
    s = cfg.sweep
    return (
        f"{cfg.profile} profile: {s.subjects} test video(s) of {s.seconds:g} s per setting (at "
        f"200 fps {s.seconds / 5:g} s); the learned spotter trained once on {len(mixture)} "
        f"videos of {s.train_seconds:g} s, one subject each, every parameter drawn at random "
        f"over its swept range (every fifth video at 200 fps), and scored on the test settings; "
        f"{cfg.spot.describe()}; learned (its p {cfg.learned.threshold:g}) "
        f"{cfg.learned.feature_size}x{cfg.learned.feature_size} features, "
        f"{cfg.learned.train.epochs} epochs; {cfg.spot.flow.faces.describe()}"
    )
