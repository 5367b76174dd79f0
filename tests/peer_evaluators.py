"""The field's other spotting evaluators, as the tests name them: their rules live in the
library (:mod:`merjax.spotting.rules`), so the scorer can score a submission each peer's way;
the tests put each beside merjax's maximum matching on the hand case where they disagree, so
the docs' claims about every peer are checked, not asserted."""

from merjax.spotting.rules import (  # noqa: F401
    best_truth_only_tp,
    megc2020_iou,
    megc2020_precision,
    strs_script_tp,
    strs_script_uar,
)
