"""Runs one experiment end to end: data, flows, LOSO training, report.

    python -m merjax.main --experiment=input_study                     # synthetic data, quick
    python -m merjax.main --experiment=input_study --profile=paper \\
        --casme2_root=/data/CASME2 --samm_root=/data/SAMM --workdir=runs/table4
    python -m merjax.main --experiment=depth_study --set=train.epochs=20 --seeds=0,1,2
    python -m merjax.main --experiment=path/to/my_study.py             # any experiment file

Experiments are the files in the repository's ``experiments/`` folder (see merjax.runner);
``--set`` changes any config field (``size=32``, ``num_folds=None``,
``train.learning_rate=5e-4``, ``flow.horn_schunck.num_iter=100``). Errors a user can make end
with one line, Ctrl-C with one line saying what was kept (exit code 130); a bug in an
experiment file keeps its traceback, and ``MERJAX_TRACEBACK=1`` shows every traceback.
"""

from __future__ import annotations

from pathlib import Path

from absl import app, flags

from merjax import console, environment, files, runner
from merjax.config import PROFILES

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "experiment",
    "input_study",
    f"Experiment name ({', '.join(runner.available()) or 'none found'}) or a .py file.",
)
flags.DEFINE_enum(
    "profile", "quick", PROFILES, "quick: minutes on a CPU; paper: the paper's protocol."
)
flags.DEFINE_string("workdir", None, "Output folder (default: runs/<experiment>-<profile>).")
flags.DEFINE_string(
    "casme2_root", None, "CASME II folder (with --samm_root: the MEGC 2018 composite)."
)
flags.DEFINE_string("samm_root", None, "SAMM folder (with --casme2_root).")
flags.DEFINE_string(
    "smic_root", None, "SMIC-HS folder (with both others: the MEGC 2019 composite, megc2019)."
)
flags.DEFINE_string(
    "casme3_root", None, "CAS(ME)^3 folder (its label file and part_A/): casme3, holdout, spotting."
)
flags.DEFINE_string(
    "samm_lv_root", None, "SAMM Long Videos folder (its release .xlsx, SAMM_longvideos/): spotting."
)
flags.DEFINE_string(
    "casme_sq_root", None, "CAS(ME)^2 folder (CAS(ME)^2code_final.xlsx, rawpic/): spotting."
)
flags.DEFINE_string(
    "test_root",
    None,
    "Unlabelled test videos (video files, or folders of frames): challenge writes their "
    "submission files.",
)
flags.DEFINE_float(
    "test_fps", None, "Frame rate of the --test_root videos (needed for folders of frames)."
)
flags.DEFINE_string(
    "cache_dir",
    None,
    "Synthetic database, flow cache and XLA's compiled programs (default: ~/.cache/merjax).",
)
flags.DEFINE_list("seeds", None, "Training seeds, e.g. 0,1,2 (mean ± std over them).")
flags.DEFINE_multi_string(
    "set", [], "Config override name=value, e.g. train.epochs=20 (repeatable)."
)
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host).")
flags.DEFINE_enum(
    "log_level", None, console.LEVELS, "Library logging (orbax, jax, absl); default: warnings only."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    console.setup(FLAGS.log_level, absl_verbosity_given=FLAGS["verbosity"].present)
    console.refuse_empty_flags(FLAGS)
    try:
        seeds = [int(s) for s in FLAGS.seeds] if FLAGS.seeds else None
    except ValueError:
        raise app.UsageError(f"--seeds must be integers, got {','.join(FLAGS.seeds)}") from None
    name = Path(FLAGS.experiment).stem
    workdir = FLAGS.workdir or f"runs/{name}-{FLAGS.profile}"
    with console.one_line_errors(runner.raised_in_experiment):
        if FLAGS.distributed:
            import jax

            jax.distributed.initialize()
        cache_dir = files.writable_dir(
            FLAGS.cache_dir or Path.home() / ".cache" / "merjax", "--cache_dir"
        )
        environment.compilation_cache(cache_dir / "xla")
        summary = runner.run(
            FLAGS.experiment,
            workdir,
            profile=FLAGS.profile,
            overrides=FLAGS.set,
            seeds=seeds,
            casme2_root=FLAGS.casme2_root,
            samm_root=FLAGS.samm_root,
            smic_root=FLAGS.smic_root,
            casme3_root=FLAGS.casme3_root,
            samm_lv_root=FLAGS.samm_lv_root,
            casme_sq_root=FLAGS.casme_sq_root,
            cache_dir=cache_dir,
            test_root=FLAGS.test_root,
            test_fps=FLAGS.test_fps,
            progress=print,
        )
    print(
        f"{summary['experiment']} ({summary['headline']}): {result_line(summary)}, "
        f"{summary['seconds']:.0f} s -> {Path(workdir) / 'report.md'}"
    )


def result_line(summary: dict) -> str:
    """The headline's scores: a recognition experiment's accuracy, UF1 and UAR beside the
    majority class, or what the experiment says itself (``summary["line"]``)."""
    if "line" in summary:
        return summary["line"]
    return (
        f"accuracy {100 * summary['accuracy']:.2f}% (majority class "
        f"{100 * summary['majority']:.2f}%), UF1 {summary['uf1']:.3f}, UAR {summary['uar']:.3f}"
    )


if __name__ == "__main__":
    app.run(main)
