"""Beyond the paper: the MEGC challenge's unseen-test protocol, and its submission files.

    python -m merjax.main --experiment=challenge                    # synthetic, quick
    python -m merjax.main --experiment=challenge --test_root=/data/megc_test --test_fps=30 \\
        --casme3_root=/data/CASME3 --samm_lv_root=/data/SAMMLV --casme_sq_root=/data/CASME_sq

The spotter and the recognition network train on every labelled long-video database given (all
their subjects: nothing is held out, the test videos are the test), or without roots on the
synthetic long videos; then every video under ``--test_root`` (video files, or folders of
frames, directly or in ``color/``: merjax.data.unlabelled), unlabelled, is spotted, and each
spotted micro-expression classified (MEGC 2019's three classes). Writes, as the organisers ask
for them, ``submission/spotting.csv`` (``vid,pred_onset,pred_offset,type``, type ``me`` or
``mae``), ``submission/str.csv`` (the same and ``emotion``) and ``submission/README.md`` (what
trained the models). Without ``--test_root`` the test videos are merjax's synthetic unlabelled
set, whose truth merjax holds: the report then scores the submission against it (as
``python -m merjax.spotting.score`` would), under merjax's rule and each peer's.

The spotters' settings are the spotting experiment's for the same profile; the spotter submitted
is the training-free one (``--set=spotter=learned`` for the other), chosen by the robustness
sweep (experiments/spotting_robustness.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from merjax import context, hosts, runner
from merjax.config import Config, base
from merjax.data import longvideo, submission, synthetic_long, unlabelled
from merjax.spotting import learned, rules, score, signal, spot_then_recognise, spotters

READS = (longvideo.LONG_VIDEOS,)
READS_TEST_ROOT = True
SUBMISSION = "submission"


@dataclasses.dataclass(frozen=True)
class ChallengeConfig(Config):
    """The spotter whose intervals are submitted, and its and the recogniser's settings."""

    # merjax.spotting.spotters.NAMES. The training-free one: on the robustness sweep's videos,
    # which neither spotter tuned on, its overall F1 was the higher in each of the 19 settings
    # (benchmarks/RESULTS.md); chosen there, not on any test video.
    spotter: str = "training-free"
    spot: signal.SpotSettings = signal.SpotSettings()
    learned: learned.LearnedSettings = learned.LearnedSettings()
    recognise: spot_then_recognise.RecogniseSettings = spot_then_recognise.RecogniseSettings()
    databases: tuple[str, ...] = longvideo.DATABASES  # synthetic layouts trained on (no roots)
    faces: str = "drawn"  # the synthetic videos' faces (training and test)


def config(profile: str) -> ChallengeConfig:
    spotting = runner.load("spotting").config(profile)
    return base(profile, ChallengeConfig).replace(
        composite=None,
        nets=(),
        headline="training-free",
        spot=spotting.spot,
        learned=spotting.learned,
        recognise=spotting.recognise,
        databases=spotting.databases,
    )


def validate(cfg: ChallengeConfig) -> None:
    if cfg.spotter not in spotters.NAMES:
        raise ValueError(f"spotter: expected one of {list(spotters.NAMES)}, got {cfg.spotter!r}")
    unknown = sorted(set(cfg.databases) - set(longvideo.DATABASES))
    if unknown or not cfg.databases:
        raise ValueError(f"databases: expected some of {list(longvideo.DATABASES)}")
    if cfg.faces not in synthetic_long.FACES:
        raise ValueError(f"faces: expected one of {list(synthetic_long.FACES)}, got {cfg.faces!r}")


def run(ctx: context.Context) -> dict:
    # the long videos' motion is cached as clip flows are: a rerun reads it back
    with signal.cached_motion(ctx.cache_dir / "motion"):
        return _run(ctx)


def _run(ctx: context.Context) -> dict:
    cfg, opts = ctx.cfg, ctx.options
    data = ctx.long_videos(cfg.databases, faces=cfg.faces)
    if opts.test_root is None:
        held = hosts.first(  # process 0 writes the test videos, the others read them
            lambda: synthetic_long.ensure_unlabelled(
                ctx.cache_dir, size=cfg.synthetic, seed=cfg.synthetic_seed, faces=cfg.faces
            ),
            "writing the unlabelled test videos",
        )
        test_root, fps = held / synthetic_long.UNLABELLED, longvideo.FPS["casme3"]
        truth_files = {k: held / f for k, f in synthetic_long.TRUTH_FILES.items()}
    else:
        test_root, fps, truth_files = Path(opts.test_root), opts.test_fps, None
    tests, notes = unlabelled.find(test_root, fps)
    ctx.say(f"{len(tests)} unlabelled test video(s) under {test_root}")
    spotter = spotters.build(cfg.spotter, cfg.spot, cfg.learned, cfg.execution, progress=ctx.say)
    size = spotter.feature_size
    labelled = [v for videos in data.videos.values() for v in videos]
    prepared = []
    for i, v in enumerate(labelled + tests):
        prepared.append(spotters.prepare(v, cfg.spot, size))
        ctx.say(f"video {i + 1}/{len(labelled) + len(tests)} ({v.name}) read")
    trained, test = prepared[: len(labelled)], prepared[len(labelled) :]
    # One run: it trains on every labelled subject and holds out every test video.
    fitted, info = spotter.fit(prepared, [[p.video.subject for p in test]])
    if fitted is None:
        raise ValueError(f"the {cfg.spotter} spotter could not be trained: {info['why']}")
    found = [spotter.intervals(spotter.score(fitted, p), p).intervals for p in test]
    named, recognition = spot_then_recognise.recognise_spotted(
        [p.video for p in prepared],
        [p.frames_FxHxW for p in prepared],
        [{} for _ in trained] + [{cfg.spotter: f} for f in found],
        cfg.recognise,
        cfg.execution,
        progress=ctx.say,
    )
    spots = {p.video.name: f for p, f in zip(test, found, strict=True)}
    labels = {
        p.video.name: n[cfg.spotter] for p, n in zip(test, named[len(trained) :], strict=True)
    }
    folder = ctx.workdir / SUBMISSION
    folder.mkdir(exist_ok=True)
    rep = ctx.report(
        "The MEGC challenge's unseen-test protocol: a submission for unlabelled test videos",
        dataclasses.replace(
            data, warnings=data.warnings + notes + [p.note for p in test if p.note]
        ),
        _protocol(cfg, test_root, tests),
    )
    rep.add_file(f"{SUBMISSION}/spotting.csv", submission.rows(spots).encode())
    rep.add_file(f"{SUBMISSION}/str.csv", submission.rows(labels, emotion=True).encode())
    readme = _readme(cfg, data, labelled, tests, test_root, info, recognition)
    rep.add_file(f"{SUBMISSION}/README.md", readme.encode())
    rep.text(readme)
    summary = {
        "experiment": "challenge",
        "headline": f"{cfg.spotter} spotter on {len(tests)} unlabelled test video(s)",
        "test_root": str(test_root),
        "spots": {
            k: sum(i.kind == k for v in spots.values() for i in v) for k in ("micro", "macro")
        },
        "training": {cfg.spotter: info, "recognition": recognition},
        "config": dataclasses.asdict(cfg),
    }
    line = f"{sum(summary['spots'].values())} spots in {len(tests)} videos"
    if truth_files is not None:
        scored = _scores(rep, truth_files, spots, labels)
        summary["scores"] = scored
        head = scored["merjax"]
        line += (
            f"; against the synthetic truth: F1 overall {head['overall']['f1']:.3f} (micro "
            f"{head['micro']['f1']:.3f}, macro {head['macro']['f1']:.3f}), STRS "
            f"{head['strs']['strs']:.3f}"
        )
    else:
        rep.text("Not scored here: the test videos' truth is the organisers'.")
    summary["line"] = line
    return rep.write(summary)


def _scores(rep, truth_files: dict, spots: dict, labels: dict) -> dict:
    """The submission scored against the synthetic test set's truth, by every rule."""
    truth = submission.read(truth_files["str"])
    out, shown = {}, []
    for name in rules.RULES:
        r = score.score(truth, labels if name == "merjax" else spots, name)
        out[name] = r
        shown.append(
            [name]
            + [
                f"{r[k]['precision']:.3f} / {r[k]['recall']:.3f} / {r[k]['f1']:.3f}"
                for k in ("micro", "macro", "overall")
            ]
            + [f"{r['strs']['strs']:.3f}" if r["strs"] else ""]
        )
    rep.table(
        "challenge_scores",
        ["rule", "me: P / R / F1", "mae: P / R / F1", "overall: P / R / F1", "STRS"],
        shown,
        title="The submission against the synthetic test videos' truth (a synthetic check, not "
        "a challenge result)",
    )
    rep.text(
        "The same numbers, from the files: `python -m merjax.spotting.score "
        f"--truth={truth_files['str']} --pred=submission/str.csv` (add `--rule=` for a peer's)."
    )
    return out


def _protocol(cfg: ChallengeConfig, root: Path, tests) -> str:
    return (
        f"{cfg.profile} profile: the {cfg.spotter} spotter and {cfg.recognise.net} trained on "
        f"every labelled subject; {len(tests)} unlabelled video(s) under {root} at "
        f"{tests[0].fps:g} fps; {cfg.spot.describe()}; {cfg.spot.flow.faces.describe()}"
    )


def _readme(cfg, data, labelled, tests, root, info, recognition) -> str:
    subjects = sorted({v.subject for v in labelled})
    spotter = (
        f", trained on {info['training_items']} frames ({info['positives']['micro']} micro and "
        f"{info['positives']['macro']} macro positives) for {cfg.learned.train.epochs} epochs"
        if info
        else " (training-free: nothing to train)"
    )
    lines = [
        "# Submission",
        "",
        f"Test videos: {len(tests)} under `{root}` at {tests[0].fps:g} fps, unlabelled.",
        "",
        "- `spotting.csv`: `vid,pred_onset,pred_offset,type`, type `me` (micro) or `mae` "
        "(macro), frames as the video's files number them (a video file's from 0).",
        "- `str.csv`: the same and `emotion` (MEGC 2019's negative / positive / surprise) "
        "on each `me` row.",
        "",
        f"Trained on {data.source}: {len(labelled)} labelled videos of {len(subjects)} "
        f"subjects, all of them (no test video, no test subject). Spotter: {cfg.spotter}"
        f"{spotter}. Recognition: {cfg.recognise.net} at {cfg.recognise.size}x"
        f"{cfg.recognise.size}, {cfg.recognise.train.epochs} epochs, on "
        f"{recognition.get('items', 0)} labelled micro-expressions. Profile {cfg.profile}; "
        f"spotting: {cfg.spot.describe()}, k {cfg.spot.half_seconds} s; "
        f"{cfg.spot.flow.faces.describe()}.",
    ]
    return "\n".join(lines) + "\n"
