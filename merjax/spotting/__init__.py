"""Micro- and macro-expression spotting in long videos (docs/spotting.md).

- :mod:`merjax.spotting.metrics` -- MEGC's spotting scores (IoU >= 0.5, one to one) and STRS;
- :mod:`merjax.spotting.signal` -- the training-free signal: region motion from jitted flows,
  relative thresholds, peaks, intervals;
- :mod:`merjax.spotting.learned` -- a SOFTNet-like network trained leave-one-subject-out;
- :mod:`merjax.spotting.spotters` -- both as values (fit, score, intervals), the way the
  experiment and notebooks use them;
- :mod:`merjax.spotting.spot_then_recognise` -- merjax's recognition networks on spotted
  intervals;
- :mod:`merjax.spotting.pipeline` -- one database's videos through the spotters and
  spot-then-recognise;
- :mod:`merjax.spotting.stream` -- real-time spotting of a video file or camera.
"""
