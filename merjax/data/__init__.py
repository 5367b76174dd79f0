"""Micro-expression databases: loaders, the MEGC composites, synthetic data and a flow cache.

Every loader returns a :class:`~merjax.data.sample.SampleList` of
:class:`~merjax.data.sample.Sample` (dataset, subject, clip, onset, apex, offset, label, frame
paths); samples skipped with ``on_error="skip"`` are in its ``.skipped``.

    from merjax.data import composite
    samples = composite.megc2018("/data/CASME2", "/data/SAMM")
    print(samples.summary())
"""

from merjax.data import casme2, casme3, composite, samm, smic
from merjax.data.cache import FlowSet, load_or_compute
from merjax.data.sample import Problem, Sample, SampleList

__all__ = [
    "FlowSet",
    "Problem",
    "Sample",
    "SampleList",
    "casme2",
    "casme3",
    "composite",
    "load_or_compute",
    "samm",
    "smic",
]
