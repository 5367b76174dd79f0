"""Micro- and macro-expression spotting in long videos (docs/spotting.md).

- :mod:`merjax.spotting.metrics` -- MEGC's spotting scores (IoU >= 0.5, one to one) and STRS;
- :mod:`merjax.spotting.signal` -- the training-free spotter: region motion from jitted flows,
  relative thresholds, peaks, intervals;
- :mod:`merjax.spotting.learned` -- a SOFTNet-like spotter trained leave-one-subject-out;
- :mod:`merjax.spotting.analysis` -- spot-then-recognize with merjax's recognition networks;
- :mod:`merjax.spotting.evaluate` -- one database's videos through all of it;
- :mod:`merjax.spotting.stream` -- real-time spotting of a video file or camera.
"""
