"""What a run depends on besides its config, and the JAX settings every entry point shares: the
compilation cache, float32 whatever the environment says, and the versions and devices a
result is recorded with.

    environment.compilation_cache("~/.cache/merjax/xla")
    with environment.float32():
        ...
    environment.describe()   # {"versions": ..., "backend": ..., "devices": ..., "processes": ...}
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import jax

PACKAGES = ("merjax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def compilation_cache(path: str | Path) -> None:
    """Keeps XLA's compiled programs in ``path`` (unless ``JAX_COMPILATION_CACHE_DIR`` says
    elsewhere), so a second run compiles nothing it compiled before (benchmarks/RESULTS.md has
    what that saves). JAX keys each entry on the program, the jax version, the backend and its
    flags, and recompiles when an entry cannot be read."""
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", str(Path(path).expanduser()))


@contextlib.contextmanager
def float32() -> Iterator[None]:
    """float32 whatever ``JAX_ENABLE_X64`` says (set for other JAX code): it would make random
    draws and initialisers float64, and a run's numbers depend on its float width."""
    with jax.enable_x64(False):
        yield


def describe() -> dict:
    """Versions, backend and devices: what a result depends on besides its config."""

    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "versions": {p: version(p) for p in PACKAGES} | {"python": sys.version.split()[0]},
        "backend": jax.default_backend(),
        "devices": [f"{d.device_kind} ({d.platform}:{d.id})" for d in jax.devices()],
        "processes": jax.process_count(),
    }
