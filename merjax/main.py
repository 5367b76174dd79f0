"""Runs one experiment end to end: data, flows, LOSO training, report.

    python -m merjax.main --experiment=input_study                     # synthetic data, quick
    python -m merjax.main --experiment=input_study --profile=paper \\
        --casme2_root=/data/CASME2 --samm_root=/data/SAMM --workdir=runs/table4
    python -m merjax.main --experiment=depth_study --set=train.epochs=20 --seeds=0,1,2
    python -m merjax.main --experiment=path/to/my_study.py             # any experiment file
    python -m merjax.main --set=execution.strategy=vmap \
        --coordinator_address=host0:8476 --num_processes=2 --process_id=0   # and =1 elsewhere

Experiments are the files in the repository's ``experiments/`` folder (see merjax.runner);
``--set`` changes any config field (``size=32``, ``num_folds=None``,
``train.learning_rate=5e-4``, ``flow.horn_schunck.num_iter=100``). Errors a user can make end
with one line, Ctrl-C with one line saying what was kept (exit code 130); a bug in an
experiment file keeps its traceback, and ``MERJAX_TRACEBACK=1`` shows every traceback.

Several processes (:mod:`merjax.hosts`; a shared disk for the workdir and the cache) run one
experiment together: every one says where it is, process 0 alone prints progress and results
and writes the files. A process that dies stops the others, each with one line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from absl import app, flags

from merjax import console, environment, files, hosts, runner
from merjax.config import PROFILES

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "experiment",
    "input_study",
    f"Experiment name ({', '.join(runner.available()) or 'none found'}) or a .py file.",
)
flags.DEFINE_enum(
    "profile",
    "quick",
    PROFILES,
    "quick: minutes on a CPU; paper: the paper's protocol (needs a GPU); tiny: the tests' "
    "profile, seconds on the tiny synthetic database (checks the plumbing, no science).",
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
    "csv_root",
    None,
    "Your own clips: a CSV of subject, clip, onset, apex, offset, label (or a folder holding "
    "clips.csv), read with --set=composite=csv (merjax.data.clip_table).",
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
flags.DEFINE_bool(
    "distributed",
    False,
    "Several processes, found by the cluster's own detection (Slurm, Open MPI, Kubernetes).",
)
flags.DEFINE_string(
    "coordinator_address", None, "Several processes: host:port of process 0 (jax.distributed)."
)
flags.DEFINE_integer("num_processes", None, "Several processes: how many.", lower_bound=1)
flags.DEFINE_integer("process_id", None, "Several processes: this one's index, 0..N-1.")
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
    several = FLAGS.distributed or any(
        FLAGS[f].present for f in ("coordinator_address", "num_processes", "process_id")
    )
    if several:
        with console.one_line_errors():
            where = hosts.initialize(
                FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
            )
            print(where, flush=True)
    try:
        # Entered after JAX's distributed runtime, whose preemption notifier takes SIGTERM:
        # this puts merjax's one-line stop back.
        with console.one_line_errors(runner.raised_in_experiment), hosts.one_line_when_lost():
            summary = _run(workdir, seeds, progress=print if hosts.is_main() else None)
    except SystemExit as e:
        if several:  # not JAX's exit barrier: the other processes may never reach it
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.code if isinstance(e.code, int) else 1)
        raise
    if hosts.is_main():
        print(
            f"{summary['experiment']} ({summary['headline']}): {result_line(summary)}, "
            f"{summary['seconds']:.0f} s -> {Path(workdir) / 'report.md'}"
        )
    else:
        print(f"process {hosts.index()}: done (process 0 wrote {Path(workdir) / 'report.md'})")


def _run(workdir: str, seeds: list[int] | None, progress) -> dict:
    """The experiment the flags name, run into ``workdir``."""
    cache_dir = files.writable_dir(
        FLAGS.cache_dir or Path.home() / ".cache" / "merjax", "--cache_dir"
    )
    environment.compilation_cache(cache_dir / "xla")
    return runner.run(
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
        csv_root=FLAGS.csv_root,
        cache_dir=cache_dir,
        test_root=FLAGS.test_root,
        test_fps=FLAGS.test_fps,
        progress=progress,
        command=command_line(),
    )


def command_line() -> str:
    """The command as given, for console.log's header (the flags the user set, in order)."""
    given = dict.fromkeys(FLAGS[n] for n in FLAGS if FLAGS[n].present)
    return " ".join(["python -m merjax.main", *(f.serialize() for f in given)])


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
