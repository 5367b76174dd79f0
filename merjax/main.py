"""Runs one of the paper's experiments end to end: data, flows, LOSO training, report.

    python -m merjax.main --experiment=input_study                     # synthetic data, quick
    python -m merjax.main --experiment=input_study --profile=paper \\
        --casme2_root=/data/CASME2 --samm_root=/data/SAMM --workdir=runs/table4
    python -m merjax.main --experiment=depth_study --set=train.epochs=20 --seeds=0,1,2

Experiments and their configs live in ``merjax/experiments/``; ``--set`` changes any config
field (``size=32``, ``num_folds=None``, ``train.learning_rate=5e-4``, ``flow.num_iter=100``). Errors a user can make end with one line;
``MERJAX_TRACEBACK=1`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from absl import app, flags

from merjax import experiments
from merjax.experiments.config import PROFILES

FLAGS = flags.FLAGS
flags.DEFINE_enum("experiment", "input_study", experiments.EXPERIMENTS, "Which experiment to run.")
flags.DEFINE_enum("profile", "quick", PROFILES, "quick: minutes on a CPU; paper: the paper's protocol.")
flags.DEFINE_string("workdir", None, "Output folder (default: runs/<experiment>-<profile>).")
flags.DEFINE_string("casme2_root", None, "CASME II folder (with --samm_root: the MEGC 2018 composite).")
flags.DEFINE_string("samm_root", None, "SAMM folder (with --casme2_root).")
flags.DEFINE_string("cache_dir", None, "Synthetic database and flow cache (default: ~/.cache/merjax).")
flags.DEFINE_list("seeds", None, "Training seeds, e.g. 0,1,2 (mean ± std over them).")
flags.DEFINE_multi_string("set", [], "Config override name=value, e.g. train.epochs=20 (repeatable).")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.getLogger("merjax").setLevel(logging.INFO)
    if FLAGS.distributed:
        import jax

        jax.distributed.initialize()
    workdir = FLAGS.workdir or f"runs/{FLAGS.experiment}-{FLAGS.profile}"
    cache_dir = FLAGS.cache_dir or Path.home() / ".cache" / "merjax"
    try:
        seeds = [int(s) for s in FLAGS.seeds] if FLAGS.seeds else None
    except ValueError:
        raise app.UsageError(f"--seeds must be integers, got {','.join(FLAGS.seeds)}") from None
    try:
        summary = experiments.run(
            FLAGS.experiment, workdir, profile=FLAGS.profile, overrides=FLAGS.set, seeds=seeds,
            casme2_root=FLAGS.casme2_root, samm_root=FLAGS.samm_root, cache_dir=cache_dir, progress=print,
        )
    except (ValueError, OSError, KeyError, FloatingPointError) as e:  # DataError is a ValueError
        if os.environ.get("MERJAX_TRACEBACK"):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(
        f"{summary['experiment']} ({summary['headline']}): accuracy {100 * summary['accuracy']:.2f}% "
        f"(majority class {100 * summary['majority']:.2f}%), UF1 {summary['uf1']:.3f}, "
        f"UAR {summary['uar']:.3f}, {summary['seconds']:.0f} s -> {Path(workdir) / 'report.md'}"
    )


if __name__ == "__main__":
    app.run(main)
