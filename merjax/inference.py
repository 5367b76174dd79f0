"""Real-time inference: two frames in, class probabilities out, in one jitted function.

A *model* is a folder that training writes (``Context.train_and_score(..., final=True)``, the final
model trained on every subject of an experiment)::

    model.json     what it is: network, flow settings, input size, classes, what it was trained on
    variables/     orbax checkpoint of {params, batch_stats, mean, scale}
    variables.binding.json   what the weights were trained as (network, representation, input
                   size, flow, classes): model.json edited afterwards no longer matches it

Use::

    model = inference.load("runs/input_study-quick/models/vy-3cl")
    probs_BxK = model.classify(onset_BxHxW, apex_BxHxW)     # frames at model.frame_size, uint8
    inference.export(model, "vy-3cl.jaxexport")              # serialized StableHLO, weights inside
    classify = inference.load_exported("vy-3cl.jaxexport")   # needs jax only, not merjax's models
    probs_BxK = classify(onset_BxHxW, apex_BxHxW)

:func:`probabilities` is the whole pipeline as a pure function of ``(variables, onset, apex)``:
the flow (Horn-Schunck or TV-L1, as trained) at the training flow size, resize to the network's
input, the flow representation, the training-set normalisation, the network in eval mode,
softmax. Frames must already be face-cropped and resized to ``frame_size``
(:func:`prepare_frames` does it as the datasets do).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from merjax import checkpoint, faces, files, flow, models
from merjax.errors import DataError
from merjax.flow import FlowSettings

FORMAT = 1  # bump when the model folder's layout changes

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything besides the weights that turns two frames into a prediction."""

    net: str  # merjax.models.by_name name, e.g. "vy-3cl", "resnet8"
    representation: str  # flow representation the network reads
    input_size: int  # network input side (the flow is resized to it)
    flow: FlowSettings  # the method (Horn-Schunck or TV-L1), its parameters, the frame size
    class_names: tuple[str, ...]
    trained_on: dict = dataclasses.field(default_factory=dict)  # data, samples, subjects, seed, ...
    param_shapes: dict = dataclasses.field(default_factory=dict)  # "params/conv1/kernel" -> shape
    # Temperature scaling fitted on the held-out LOSO logits (1.0: uncalibrated), and what the
    # fit measured: the calibration error before and after, on how many clips.
    temperature: float = 1.0
    calibration: dict = dataclasses.field(default_factory=dict)
    # The training clips' flow, for saying when a new clip's lies outside it: e.g.
    # {"magnitude_p99": the 99th percentile over clips of each clip's largest |flow|, px}
    flow_range: dict = dataclasses.field(default_factory=dict)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.flow.size

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["flow"] = self.flow.to_json()
        out["class_names"] = list(self.class_names)
        out["format"] = FORMAT
        return out

    @classmethod
    def from_json(cls, d: dict, where: str) -> ModelSpec:
        if d.get("format") != FORMAT:
            raise DataError(
                f"{where}: model format {d.get('format')!r}, this merjax reads {FORMAT}"
            )
        try:
            return cls(
                net=d["net"],
                representation=d["representation"],
                input_size=int(d["input_size"]),
                flow=FlowSettings.from_json(d["flow"]),
                class_names=tuple(d["class_names"]),
                trained_on=d.get("trained_on", {}),
                param_shapes=d.get("param_shapes", {}),
                temperature=float(d.get("temperature", 1.0)),
                calibration=d.get("calibration", {}),
                flow_range=d.get("flow_range", {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: not a merjax model description ({e})") from None


def _shapes(tree: Any) -> dict[str, list[int]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): list(np.shape(v)) for path, v in flat
    }


def flow_of(onset_BxHxW: jax.Array, apex_BxHxW: jax.Array, spec: ModelSpec) -> jax.Array:
    """The flow ``[B, H, W, 2]`` the model was trained on (Horn-Schunck or TV-L1, its settings)."""
    return flow.compute(onset_BxHxW, apex_BxHxW, spec.flow.method, **spec.flow.params())


def maps_of(onset_BxHxW: jax.Array, apex_BxHxW: jax.Array, spec: ModelSpec) -> jax.Array:
    """The network's input maps ``[B, s, s, C]`` before the normalisation: the flow, resized,
    in the model's representation."""
    return flow.input_maps(
        flow_of(onset_BxHxW, apex_BxHxW, spec), spec.input_size, spec.representation
    )


def network_input(variables: dict, uv_BxHxWx2: jax.Array, spec: ModelSpec) -> jax.Array:
    """What the network reads ``[B, s, s, C]``: the flow resized to its input, its representation,
    the training normalisation -- the steps training took from the cached flows."""
    return normalised(variables, flow.input_maps(uv_BxHxWx2, spec.input_size, spec.representation))


def normalised(variables: dict, maps_BxSxSxC: jax.Array) -> jax.Array:
    """The training normalisation (the training set's mean and scale, stored with the weights)."""
    return (maps_BxSxSxC - variables["mean"]) / variables["scale"]


def maps_probabilities(
    variables: dict, maps_BxSxSxC: jax.Array, *, module: nn.Module, temperature: float = 1.0
) -> jax.Array:
    """Class probabilities ``[B, K]`` from input maps (before the normalisation): the network in
    eval mode, softmax of the logits over the model's calibration ``temperature``. The part of
    the pipeline edge runtimes quantise."""
    logits = module.apply(
        {"params": variables["params"], "batch_stats": variables["batch_stats"]},
        normalised(variables, maps_BxSxSxC),
    )
    return jax.nn.softmax(logits / temperature, axis=-1)


def network_probabilities(
    variables: dict, uv_BxHxWx2: jax.Array, *, module: nn.Module, spec: ModelSpec
) -> jax.Array:
    """Class probabilities ``[B, K]`` from flows: the input maps, then
    :func:`maps_probabilities`."""
    maps = flow.input_maps(uv_BxHxWx2, spec.input_size, spec.representation)
    return maps_probabilities(variables, maps, module=module, temperature=spec.temperature)


def probabilities(
    variables: dict,
    onset_BxHxW: jax.Array,
    apex_BxHxW: jax.Array,
    *,
    module: nn.Module,
    spec: ModelSpec,
) -> jax.Array:
    """Class probabilities ``[B, K]`` for pairs of frames ``[B, H, W]`` (uint8 or float in [0, 1])
    at ``spec.frame_size``. Pure: jit it, vmap it, export it."""
    uv = flow_of(onset_BxHxW, apex_BxHxW, spec)
    return network_probabilities(variables, uv, module=module, spec=spec)


def _fresh_variables(module: nn.Module, spec: ModelSpec, key: jax.Array) -> dict:
    """Initialised weights and an identity normalisation: the structure every model folder holds."""
    s, c = spec.input_size, flow.REPRESENTATIONS[spec.representation]
    v = models.init(module, key, (s, s, c))
    return {
        "params": v["params"],
        "batch_stats": v.get("batch_stats", {}),
        "mean": jnp.zeros((s, s, c), jnp.float32),
        "scale": jnp.float32(1.0),
    }


@dataclasses.dataclass
class Model:
    """A loaded model: its spec, its Flax module and its variables (a plain pytree)."""

    spec: ModelSpec
    module: nn.Module
    variables: dict
    path: Path | None = None

    def __post_init__(self):
        fn = functools.partial(probabilities, module=self.module, spec=self.spec)
        self._jitted = jax.jit(fn)
        self._flow = jax.jit(functools.partial(flow_of, spec=self.spec))

        def with_flow(variables, onset, apex):  # one flow for both the network and its range
            uv = flow_of(onset, apex, self.spec)
            probs = network_probabilities(variables, uv, module=self.module, spec=self.spec)
            return probs, uv

        self._with_flow = jax.jit(with_flow)

    def classify(self, onset_BxHxW, apex_BxHxW) -> np.ndarray:
        """Probabilities ``[B, K]``; one compilation per batch size."""
        onset, apex = check_pairs(onset_BxHxW, apex_BxHxW, self.spec.frame_size)
        return np.asarray(self._jitted(self.variables, onset, apex))

    def outside_training(self, onset_BxHxW, apex_BxHxW) -> list[str | None]:
        """Per pair, why its flow lies outside what the model was trained on (its largest
        magnitude beyond the 99th percentile of the training clips'), or None. Probabilities
        there are an extrapolation, however confident: a model fitted to sub-pixel facial
        motion says little about a head turn or another scene."""
        onset, apex = check_pairs(onset_BxHxW, apex_BxHxW, self.spec.frame_size)
        return self._beyond_range(self._flow(onset, apex))

    def classify_checked(self, onset_BxHxW, apex_BxHxW) -> tuple[np.ndarray, list[str | None]]:
        """:meth:`classify` and :meth:`outside_training` from one flow computation."""
        onset, apex = check_pairs(onset_BxHxW, apex_BxHxW, self.spec.frame_size)
        probs, uv = self._with_flow(self.variables, onset, apex)
        return np.asarray(probs), self._beyond_range(uv)

    def _beyond_range(self, uv_BxHxWx2) -> list[str | None]:
        limit = self.spec.flow_range.get("magnitude_p99")
        if limit is None:
            return [None] * len(uv_BxHxWx2)
        peak = peak_magnitude(np.asarray(uv_BxHxWx2))
        return [
            f"its flow reaches {p:.2f} px, beyond the {limit:.2f} px that 99% of the training "
            "clips stay under: the probabilities are an extrapolation"
            if p > limit
            else None
            for p in peak
        ]

    def jitted(self) -> Callable[[jax.Array, jax.Array], jax.Array]:
        """``(onset, apex) -> probabilities`` with the weights bound: what :func:`export` saves."""
        return jax.jit(lambda a, b: self._jitted(self.variables, a, b))


def peak_magnitude(flows_NxHxWx2: np.ndarray) -> np.ndarray:
    """Each flow's largest vector length ``[N]`` (pixels, float64): what a model's flow range
    is measured in."""
    uv = np.asarray(flows_NxHxWx2, np.float64)
    return np.sqrt((uv**2).sum(-1)).reshape(len(uv), -1).max(1)


def untrained(
    net: str,
    input_size: int,
    flow_settings: FlowSettings = FlowSettings(),
    *,
    seed: int = 0,
    class_names: Sequence[str] = tuple(f"class {i}" for i in range(5)),
) -> Model:
    """A model with initialised weights: for timing (weights do not change the time) and tests."""
    module, rep = models.by_name(net, num_classes=len(class_names))
    spec = ModelSpec(net, rep, input_size, flow_settings, tuple(class_names))
    return Model(spec, module, _fresh_variables(module, spec, jax.random.key(seed)))


def check_pairs(onset, apex, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frames as ``[B, H, W]`` arrays of the model's frame size; a DataError says what is wrong."""
    onset, apex = np.asarray(onset), np.asarray(apex)
    if onset.ndim == 2:
        onset, apex = onset[None], apex[None]
    if onset.shape != apex.shape:
        raise DataError(f"onset and apex frames differ in shape: {onset.shape} vs {apex.shape}")
    if onset.ndim != 3 or tuple(onset.shape[1:]) != tuple(frame_size):
        raise DataError(
            f"frames must be [B, {frame_size[0]}, {frame_size[1]}] grey (the model's frame size), "
            "got "
            f"{onset.shape}; prepare_frames crops and resizes raw frames"
        )
    return onset, apex


# --------------------------------------------------------------------------- frames


def to_gray(image: np.ndarray, where: str = "frame") -> np.ndarray:
    """``[H, W]`` uint8 grey from a grey, BGR or BGRA image (OpenCV's channel order)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        import cv2

        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise DataError(f"{where}: expected a grey or colour image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise DataError(f"{where}: expected 8-bit pixels, got {image.dtype}")
    return image


def prepare_frames(
    images: Sequence[np.ndarray],
    size: tuple[int, int],
    *,
    crop: str = "face",
    names: Sequence[str] | None = None,
    box: faces.Box | None = None,
    face: faces.FaceSettings | None = None,
) -> tuple[np.ndarray, faces.Box | None, str]:
    """Grey frames ``[N, H, W]`` uint8 at ``size``, cropped as the datasets are: by the face
    pipeline ``face`` (a model's ``spec.flow.faces``; the default settings when None) -- the face
    found on the first frame, every frame aligned to the template, or one box cropping every
    frame (``box``, when given, is that box) -- or, for ``crop="none"``, whole. Returns the
    frames, the face's box on the first frame and the pipeline's note ('' or e.g. why the whole
    frame is used). Frames of different sizes are an error."""
    names = list(names) if names is not None else [f"frame {i}" for i in range(len(images))]
    grays = [to_gray(im, n) for im, n in zip(images, names, strict=True)]
    sizes = {g.shape for g in grays}
    if len(sizes) > 1:
        detail = ", ".join(
            f"{n}: {g.shape[1]}x{g.shape[0]}" for n, g in zip(names, grays, strict=True)
        )
        raise DataError(f"frames differ in size ({detail}); flow needs frames of one size")
    if crop not in ("face", "none"):
        raise ValueError(f"crop must be 'face' or 'none', got {crop!r}")
    if crop == "none" or box is not None:
        return np.stack([faces.crop_resize(g, box, size) for g in grays]), box, ""
    geometry = faces.pipeline.fit(grays, size, face or faces.FaceSettings(), names[0])
    return faces.pipeline.crops(grays, size, geometry), geometry.box, "; ".join(geometry.notes)


# --------------------------------------------------------------------------- saving and loading


BINDING = "variables.binding.json"
_BOUND = ("net", "representation", "input_size", "flow", "class_names")


def binding(spec: ModelSpec) -> dict:
    """What defines the network's input and output, as the weights were trained: saved with the
    checkpoint, so that a model.json edited afterwards (another flow, network or class list whose
    shapes happen to fit) is refused instead of predicting something else."""
    d = spec.to_json()
    return {k: d[k] for k in _BOUND}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        return {k2: v2 for k, v in d.items() for k2, v2 in _flat(v, f"{prefix}{k}.").items()}
    return {prefix[:-1]: d}


def _check_binding(path: Path, spec: ModelSpec) -> None:
    """Refuses a model.json that no longer matches what the weights were trained as, naming the
    field; a folder saved before bindings existed loads with a one-line notice."""
    bound = path / BINDING
    if not bound.is_file():
        log.warning(
            "%s was saved by an older merjax (no %s): its model.json is trusted as written",
            path,
            BINDING,
        )
        return
    try:
        saved = _flat(json.loads(bound.read_text()))
    except (OSError, ValueError) as e:
        raise DataError(f"{str(bound)!r} is unreadable ({e}); save the model again") from None
    now = _flat(binding(spec))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise DataError(
                f"{str(path / 'model.json')!r}: {key} is {now.get(key)!r}, but the weights were "
                f"trained with {saved.get(key)!r} ({BINDING}); model.json was edited after "
                "saving: restore it, or train a model for the new setting"
            )


def save(path: str | Path, spec: ModelSpec, variables: dict) -> Path:
    """Writes a model folder, replacing one that is there only once the new one is complete (it
    is built beside it and renamed into place: a run killed while saving leaves the old model)."""
    variables = {k: variables[k] for k in ("params", "batch_stats", "mean", "scale")}
    spec = dataclasses.replace(spec, param_shapes=_shapes(variables))

    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        checkpoint.save_tree(folder / "variables", variables)
        files.write_json(folder / BINDING, binding(spec))
        files.write_json(folder / "model.json", spec.to_json())

    return files.replace_dir(path, build)


def load(path: str | Path, *, expect_net: str | None = None) -> Model:
    """Loads a model folder. ``expect_net`` checks the architecture: a model trained as another
    network is an error, as is a checkpoint whose weights do not fit its declared network."""
    path = Path(path).expanduser().absolute()
    meta = path / "model.json"
    if not meta.is_file():
        raise DataError(f"{str(path)!r} is not a merjax model folder (no model.json in it)")
    try:
        spec = ModelSpec.from_json(json.loads(meta.read_text()), str(meta))
    except json.JSONDecodeError as e:
        raise DataError(f"{str(meta)!r} is not valid JSON: {e}") from None
    if expect_net is not None and expect_net.lower() != spec.net.lower():
        raise DataError(f"{str(path)!r} holds a {spec.net} model, not {expect_net}")
    _check_binding(path, spec)
    module, rep = models.by_name(spec.net, num_classes=len(spec.class_names))
    if rep != spec.representation:
        raise DataError(
            f"{str(meta)!r}: {spec.net} reads {rep}, the file says {spec.representation}"
        )
    abstract = jax.eval_shape(lambda k: _fresh_variables(module, spec, k), jax.random.key(0))
    want = _shapes(abstract)
    if not spec.param_shapes:  # checked here: a failed orbax restore is slow and noisy
        raise DataError(
            f"{str(meta)!r} lists no param_shapes; it was not written by merjax.inference.save"
        )
    if spec.param_shapes != want:
        keys = sorted(set(want) | set(spec.param_shapes))
        diff = [k for k in keys if want.get(k) != spec.param_shapes.get(k)][:3]
        raise DataError(
            f"{str(path)!r}: its weights do not fit a {spec.net} on "
            f"{spec.input_size}x{spec.input_size} "
            f"{spec.representation} (first "
            "differences: "
            f"{', '.join(f'{k} {spec.param_shapes.get(k)} vs {want.get(k)}' for k in diff)}); "
            "the checkpoint is from another architecture"
        )
    try:
        stored = checkpoint.stored_shapes(path / "variables")
    except Exception as e:  # orbax raises many kinds; the message is what matters
        raise DataError(f"cannot read the weights in {str(path / 'variables')!r}: {e}") from None
    if stored != want:
        keys = sorted(set(want) | set(stored))
        diff = [k for k in keys if want.get(k) != stored.get(k)][:3]
        raise DataError(
            f"{str(path / 'variables')!r}: these weights do not fit a {spec.net} on "
            f"{spec.input_size}x{spec.input_size} {spec.representation} (first differences: "
            f"{', '.join(f'{k} {stored.get(k)} vs {want.get(k)}' for k in diff)}); they are "
            "another network's: copy the whole model folder, not its variables/"
        )
    try:
        variables = checkpoint.restore_tree(path / "variables", abstract)
    except Exception as e:  # orbax raises many kinds; the message is what matters
        raise DataError(f"cannot restore the weights in {str(path / 'variables')!r}: {e}") from None
    return Model(spec, module, dict(variables), path)


# --------------------------------------------------------------------------- export


JAX_EXPORT_WINDOW_DAYS = 180
"""jax.export's promise: an artifact runs on the jax versions released within about six months of
the one that wrote it (newer jax refuses older artifacts unless told otherwise)."""


def export(model: Model, path: str | Path, *, platforms: Sequence[str] = ("cpu", "cuda")) -> Path:
    """Serializes ``(onset [B, H, W] uint8, apex [B, H, W] uint8) -> probabilities [B, K]`` with
    ``jax.export``: StableHLO with the weights inside and a symbolic batch size, runnable on every
    platform in ``platforms`` by any jax that reads it (no merjax needed). The model's spec goes
    to ``<path>.json`` beside it, with the jax version and date it was exported on and the model
    folder it came from: the folder is the durable format, this file lasts jax.export's window."""
    from jax import export as jax_export

    path = Path(path)
    h, w = model.spec.frame_size
    (b,) = jax_export.symbolic_shape("b")
    arg = jax.ShapeDtypeStruct((b, h, w), jnp.uint8)
    exported = jax_export.export(model.jitted(), platforms=tuple(platforms))(arg, arg)
    meta = model.spec.to_json()
    meta["jaxexport"] = {
        "jax": jax.__version__,
        "exported": datetime.date.today().isoformat(),
        "platforms": list(platforms),
        "model_folder": str(model.path) if model.path else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    files.commit(
        {
            path: bytes(exported.serialize()),
            Path(f"{path}.json"): (json.dumps(meta, indent=1) + "\n").encode(),
        }
    )
    return path


def _export_record(path: Path) -> dict:
    try:
        return json.loads(Path(f"{path}.json").read_text()).get("jaxexport", {})
    except (OSError, ValueError, AttributeError):
        return {}


def load_exported(path: str | Path) -> Callable[[np.ndarray, np.ndarray], jax.Array]:
    """The exported function of :func:`export`; it uses nothing of merjax but this loader.

    A file past jax.export's compatibility window (:data:`JAX_EXPORT_WINDOW_DAYS`, from the date
    and jax version in its ``.json``) gives one line saying how to export it again from its
    model folder; one this jax cannot read is a DataError saying the same."""
    from jax import export as jax_export

    path = Path(path)
    rec = _export_record(path)
    folder = rec.get("model_folder") or "MODEL_FOLDER"
    how = (
        "export it again from its model folder: "
        f"python -m merjax.predict --model={folder} --export={path}"
    )
    made = f"exported by jax {rec.get('jax', '?')} on {rec.get('exported', '?')}"
    try:
        age = (datetime.date.today() - datetime.date.fromisoformat(rec["exported"])).days
    except (KeyError, TypeError, ValueError):
        age = None
    if age is not None and age > JAX_EXPORT_WINDOW_DAYS and rec.get("jax") != jax.__version__:
        log.warning(
            "%s: %s, %d days ago, past jax.export's ~6-month window for jax %s; %s",
            path, made, age, jax.__version__, how,
        )  # fmt: skip
    try:
        return jax_export.deserialize(bytearray(path.read_bytes())).call
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    except Exception as e:  # jax raises several kinds for old or damaged artifacts
        raise DataError(
            f"{str(path)!r} ({made}) cannot be read by jax {jax.__version__} "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {how}"
        ) from None
