"""The paper's future work: lighter networks, found by a search over a declared space.

    python -m merjax.main --experiment=efficiency  # the quick profile (its time: README)
    python -m merjax.main --experiment=efficiency --profile=tiny   # plumbing: 8 candidates

The space (:data:`SPACE`) is family (the paper's plain convolutions, depthwise-separable,
ShuffleNet v2 units, and those with ShuffleNet v1's pointwise group convolutions) x depth (1-4
conv layers) x width (the paper's 16 filters per input channel, or half) x input representation
(Vy, optical strain, Vx-Vy, Vx-Vy-strain). Every candidate trains with the profile's protocol on
the MEGC 2018 composite, all folds at once; candidates of one architecture and input shape (Vy
and strain: one channel each) train as one program (:func:`merjax.evaluation.train_together`),
and the group holding Vy-3CL (else the first) is also trained one network after another, in the
same run, for candidates per hour both ways.

Each candidate gets UF1 and UAR with their subject-bootstrap intervals, parameters and FLOPs,
and latency: two frames to class probabilities, flow included, batch 1, on this machine, in JAX
and in ONNX Runtime; all at 64x64, the paper's deployment size (16x16 in the tiny profile). The
report shows the Pareto fronts (UF1 against parameters and against latency) with the paper's
Vy-3CL and ResNet8 marked, and names no best network: picking one by these held-out scores would
select on the test subjects.
int8: the Vy-3CL of every fold quantised (calibrated on that fold's training clips), its
held-out accuracy and UF1 beside the float network's, and the ONNX Runtime speed-up.

Writes ``efficiency.{csv,md}``, ``pareto.png``, ``together.{csv,md}``, ``int8.{csv,md}``,
``latency.{csv,md}``, ``report.md`` and ``summary.json`` (``candidates``: each with ``uf1``,
``uar``, their intervals, ``params``, ``flops``, ``latency_ms``, ``latency_onnx_ms`` and whether it
is on a front).
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np

from merjax import context, edge, evaluation, flow, inference, metrics, models, report, train
from merjax.config import Config, base
from merjax.errors import DataError
from merjax.flow import FlowSettings
from merjax.report import num, pct

FAMILIES = {"plain": "", "sep": "-sep", "shuffle": "-shuffle", "shuffle-g4": "-shuffle-g4"}
"""Name suffixes (models.by_name): shuffle is ShuffleNet v2's unit, shuffle-g4 the same with
ShuffleNet v1's pointwise group convolutions in 4 groups."""
SPACE = {
    "family": tuple(FAMILIES),
    "depth": (1, 2, 3, 4),
    "width": (1.0, 0.5),  # of the paper's 16 filters per input channel in the first layer
    "representation": ("vy", "strain", "vxvy", "vxvystrain"),
}
"""The declared search space; every candidate is one point of it."""

REFERENCES = ("vy-3cl", "resnet8")
"""The paper's networks, trained beside the candidates and marked on the fronts."""


@dataclasses.dataclass(frozen=True)
class EfficiencyConfig(Config):
    space: dict = dataclasses.field(default_factory=lambda: dict(SPACE))
    deploy: int = 64  # frame and input side of params, FLOPs, latency: the paper's 64x64
    latency_repeats: int = 30  # batch-1 calls timed per candidate and runtime
    int8: bool = True  # quantise the Vy-3CL of every fold and score it


def config(profile: str) -> EfficiencyConfig:
    cfg = base(profile, EfficiencyConfig).replace(nets=(), headline="vy-3cl")
    if profile == "tiny":  # plumbing: one depth and width, two representations of one channel
        space = dict(SPACE, depth=(2,), width=(1.0,), representation=("vy", "strain"))
        cfg = cfg.replace(space=space, latency_repeats=3, deploy=16)
    elif profile == "quick":  # minutes on a 2-core CPU: depths 1 and 3, three representations
        space = dict(SPACE, depth=(1, 3), representation=("vy", "strain", "vxvystrain"))
        cfg = cfg.replace(space=space, latency_repeats=20)
    return cfg


def validate(cfg: EfficiencyConfig) -> None:
    unknown = set(cfg.space) ^ set(SPACE)
    if unknown:
        raise ValueError(f"space: the dimensions are {sorted(SPACE)}, got {sorted(cfg.space)}")
    for dim, values in cfg.space.items():
        bad = [v for v in values if v not in SPACE[dim]]
        if bad or not values:
            raise ValueError(f"space.{dim}: {bad or 'empty'}; choose from {SPACE[dim]}")


def candidate_name(family: str, depth: int, width: float, representation: str) -> str:
    """The network's merjax name (models.by_name): e.g. ``strain-3cl-sep-w8``."""
    channels = flow.REPRESENTATIONS[representation]
    suffix = "" if width == 1.0 else f"-w{int(16 * channels * width)}"
    return f"{representation}-{depth}cl{FAMILIES[family]}{suffix}"


def candidates(space: dict) -> list[dict]:
    """Every point of ``space``, with its name and the program it shares (family, depth,
    width and input channels: the same parameters, so one compiled program trains them)."""
    out = []
    for family, depth, width, rep in itertools.product(*(space[k] for k in SPACE)):
        if family.startswith("shuffle") and depth == 1:  # its one layer is the plain conv
            continue
        out.append(
            {
                "net": candidate_name(family, depth, width, rep),
                "family": family,
                "depth": depth,
                "width": width,
                "representation": rep,
                "program": (family, depth, width, flow.REPRESENTATIONS[rep]),
            }
        )
    return out


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """Which ``(cost, score)`` points no other point beats: no cheaper-or-equal point with a
    higher-or-equal score, better in one of the two."""
    on = []
    for i, (c, s) in enumerate(points):
        dominated = any(
            (c2 <= c and s2 >= s) and (c2 < c or s2 > s)
            for j, (c2, s2) in enumerate(points)
            if j != i
        )
        on.append(not dominated)
    return on


def run(ctx: context.Context) -> dict:
    cfg, data = ctx.cfg, ctx.data()
    cands = candidates(cfg.space)
    programs: dict[tuple, list[dict]] = {}
    for c in cands:
        programs.setdefault(c["program"], []).append(c)
    ctx.say(f"efficiency: {len(cands)} candidates in {len(programs)} programs")
    results, together = {}, {}
    for i, group in enumerate(programs.values()):
        nets = [c["net"] for c in group]
        ctx.say(f"program {i + 1}/{len(programs)}: {', '.join(nets)}")
        t0 = time.perf_counter()
        if len(nets) == 1:
            res = [ctx.train_and_score(nets[0])]
        else:
            res = evaluation.train_together(
                nets,
                data,
                cfg,
                ctx.workdir,
                name="+".join(nets),
                progress=ctx.progress,
                keep_states=cfg.int8 and "vy-3cl" in nets,
            )
        seconds = time.perf_counter() - t0
        for c, r in zip(group, res, strict=True):
            results[c["net"]] = (c, r)
        if len(nets) > 1:
            together[tuple(nets)] = seconds
    # Timed one by one: the program holding the paper's Vy-3CL where there is one (a network
    # whose training time is not all compilation), else the first shared program.
    timed = next((n for n in together if cfg.headline in n), next(iter(together), None))
    timing = _one_by_one(ctx, list(timed), together[timed]) if timed else None
    refs = {}
    for net in REFERENCES:  # Vy-3CL keeps every fold's weights for int8 (and its model folder)
        keep = cfg.int8 and net == "vy-3cl"
        refs[net] = results[net][1] if net in results else ctx.train_and_score(net, final=keep)
    todo = list(results.values())
    todo += [
        ({"net": n, "family": "reference", "depth": None, "width": 1.0,
          "representation": r.representation}, r)
        for n, r in refs.items()
        if n not in results
    ]  # fmt: skip
    ctx.say(
        f"measuring parameters, FLOPs and latency at {cfg.deploy}x{cfg.deploy} (JAX and ONNX "
        f"Runtime, each graph converted first)"
    )
    rows = []
    for k, (c, r) in enumerate(todo):
        rows.append(_measure(c, r, cfg))
        onnx_ms = rows[-1]["latency_onnx_ms"]
        ctx.say(
            f"  {k + 1}/{len(todo)} {c['net']}: {rows[-1]['latency_ms']:.2f} ms JAX, "
            + ("no ONNX" if onnx_ms is None else f"{onnx_ms:.2f} ms ONNX Runtime")
        )
    for key in ("params", "latency_ms"):
        on = pareto([(r[key], r["uf1"]) for r in rows])
        for r, flag in zip(rows, on, strict=True):
            r[f"front_{key}"] = flag
    int8 = _int8(ctx, refs["vy-3cl"], data, cfg) if cfg.int8 else None
    return _report(ctx, data, cfg, rows, refs, timing, len(cands), int8)


def _one_by_one(ctx: context.Context, nets: list[str], together_s: float) -> dict:
    """The same candidates trained one network after another, in this run: the baseline of
    training them together (both times include compiling, as a search pays it)."""
    cfg, data = ctx.cfg, ctx.data()
    t0 = time.perf_counter()
    for net in nets:
        evaluation.train_and_score(
            net, data, cfg, ctx.workdir, name=f"{net}-alone", progress=ctx.progress
        )
    alone_s = time.perf_counter() - t0
    return {
        "nets": nets,
        "together_s": round(together_s, 2),
        "one_by_one_s": round(alone_s, 2),
        "together_per_hour": round(3600 * len(nets) / together_s, 1),
        "one_by_one_per_hour": round(3600 * len(nets) / alone_s, 1),
        "speedup": round(alone_s / together_s, 2),
    }


def _measure(c: dict, r: evaluation.NetResult, cfg: EfficiencyConfig) -> dict:
    """A candidate's scores and its costs at the deployment size, on this machine."""
    row = r.row()
    module, rep = models.by_name(c["net"])
    shape = (cfg.deploy, cfg.deploy, flow.REPRESENTATIONS[rep])
    model = inference.untrained(c["net"], cfg.deploy, FlowSettings(size=(cfg.deploy, cfg.deploy)))
    rng = np.random.default_rng(0)
    onset = rng.integers(0, 256, (1, cfg.deploy, cfg.deploy), np.uint8)
    apex = np.clip(onset.astype(int) + rng.integers(-3, 4, onset.shape), 0, 255).astype(np.uint8)
    jitted = model.jitted()
    latency = edge.latency_ms(jitted, onset, apex, repeats=cfg.latency_repeats)
    try:
        runtime = edge.runtime(model)
        onnx_ms = edge.latency_ms(runtime.classify, onset, apex, repeats=cfg.latency_repeats)
    except DataError as e:  # no export extra, or a network that does not convert
        onnx_ms, note = None, str(e)
    else:
        note = ""
    return {
        "net": c["net"],
        "family": c["family"],
        "depth": c["depth"],
        "width": c["width"],
        "representation": rep,
        "uf1": row["uf1"],
        "uf1_ci": row["uf1_ci"],
        "uar": row["uar"],
        "uar_ci": row["uar_ci"],
        "accuracy": row["accuracy"],
        "majority": row["majority"],
        "params": models.count_params(module, shape),
        "flops": models.count_flops(module, shape),
        "latency_ms": round(latency, 3),
        "latency_onnx_ms": None if onnx_ms is None else round(onnx_ms, 3),
        "onnx_note": note,
        "seconds": row["seconds"],
    }


def _int8(ctx: context.Context, result: evaluation.NetResult, data, cfg) -> dict | None:
    """Vy-3CL of every fold (first seed) quantised to int8, calibrated on at most 64 of that
    fold's training clips, scored on its held-out clips beside the float network; and ONNX
    Runtime's batch-1 latency of the whole pipeline, float and int8, at the deployment size."""
    loso = result.loso
    module, rep = models.by_name("vy-3cl", num_classes=data.num_classes)
    x, _ = evaluation.network_inputs(data, rep, cfg.size)
    spec = inference.ModelSpec("vy-3cl", rep, cfg.size, cfg.flow, data.class_names)
    seed = loso.seeds[0]
    float_preds = np.full(len(data.labels), -1)
    int8_preds = np.full(len(data.labels), -1)
    n = len(data.labels)
    try:
        for r in range(loso.plan.num_real):
            if loso.plan.held_out[r] == train.FINAL or int(loso.plan.seeds[r]) != seed:
                continue
            state = evaluation.run_variables(loso.states, r)
            model = inference.Model(spec, module, state)
            trained = np.flatnonzero(loso.plan.train_mask[r][:n])
            calib = x[trained[np.linspace(0, len(trained) - 1, min(64, len(trained))).astype(int)]]
            sess = edge.network_session(edge.quantized_network(model, calib))
            test = loso.plan.tested(r)
            probs = sess.run([edge.OUTPUT], {edge.NETWORK_INPUT: x[test]})[0]
            int8_preds[test] = probs.argmax(-1)
            float_preds[test] = loso.preds[loso.seeds.index(seed)][test]
    except DataError as e:
        ctx.say(f"int8: {e}")
        return {"note": str(e)}
    held = int8_preds >= 0
    k = data.num_classes
    f = metrics.summarize(data.labels[held], float_preds[held], k)
    q = metrics.summarize(data.labels[held], int8_preds[held], k)
    timing = _int8_latency(cfg)
    return {
        "seed": int(seed),
        "n": int(held.sum()),
        "float": {m: f[m] for m in ("accuracy", "uf1", "uar")},
        "int8": {m: q[m] for m in ("accuracy", "uf1", "uar")},
        "agree": float((float_preds[held] == int8_preds[held]).mean()),
        "quantised": list(edge.QUANTISED_OPS),
        **timing,
    }


def _int8_latency(cfg) -> dict:
    """ONNX Runtime, batch 1, deployment-size frames: the float graph and the int8 one
    (calibrated on random frames: the time does not depend on the calibration)."""
    import tempfile
    from pathlib import Path

    model = inference.untrained("vy-3cl", cfg.deploy, FlowSettings(size=(cfg.deploy, cfg.deploy)))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, cfg.deploy, cfg.deploy), np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        f = edge.load_onnx(edge.export_onnx(model, Path(tmp) / "f.onnx"))
        q = edge.load_onnx(
            edge.quantize_int8(model, Path(tmp) / "q.onnx", calibration=(frames, frames[::-1]))
        )
        a, b = frames[:1], frames[1:2]
        float_ms = edge.latency_ms(f.classify, a, b, repeats=cfg.latency_repeats)
        int8_ms = edge.latency_ms(q.classify, a, b, repeats=cfg.latency_repeats)
    return {"onnx_float_ms": round(float_ms, 3), "onnx_int8_ms": round(int8_ms, 3)}


def _ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _report(ctx, data, cfg, rows, refs, timing, n_cands, int8) -> dict:
    rep = ctx.report("Efficiency: a search over lighter networks (the paper's future work)", data)
    space = ", ".join(f"{k} {list(v)}" for k, v in cfg.space.items())
    rep.text(
        f"Space ({n_cands} candidates): {space}; at depth 1 the shuffle families are the plain "
        f"network (its first layer is a plain convolution), so it is left out there. Training "
        f"inputs {cfg.size}x{cfg.size}. Parameters, FLOPs (XLA's count of one forward pass) and "
        f"latency (two {cfg.deploy}x{cfg.deploy} frames to class probabilities, Horn-Schunck "
        f"included, batch 1, median on this machine) are at {cfg.deploy}x{cfg.deploy}"
        + (", the paper's deployment size." if cfg.deploy == 64 else " (this profile's size)."),
        "**No best network is named.** A network picked by these held-out scores would be chosen "
        "on the test subjects, the selection the field's numbers suffer from; choosing one needs "
        "a nested protocol (an inner LOSO on the training subjects of each outer fold). The fronts "
        "below are what the search found, with the paper's Vy-3CL and ResNet8 marked.",
    )
    if "synthetic" in data.source.lower():
        rep.text(
            "On synthetic data the scores check the pipeline; they are not comparable with "
            "published real-data numbers."
        )
    rows = sorted(rows, key=lambda r: (-r["uf1"], r["params"]))
    rep.table(
        "efficiency",
        [
            "network",
            "UF1 [95%]",
            "UAR [95%]",
            "accuracy",
            "params",
            "MFLOPs",
            "JAX ms",
            "ONNX Runtime ms",
            "front (params / latency)",
        ],  # fmt: skip
        [
            [
                r["net"] + (" (paper)" if r["net"] in REFERENCES else ""),
                f"{num(r['uf1'], 3)} {_ci(r['uf1_ci'])}",
                f"{num(r['uar'], 3)} {_ci(r['uar_ci'])}",
                pct(r["accuracy"]),
                f"{r['params']:,}",
                num(r["flops"] / 1e6, 2),
                num(r["latency_ms"], 2),
                num(r["latency_onnx_ms"], 2),
                " / ".join("yes" if r[f"front_{k}"] else "-" for k in ("params", "latency_ms")),
            ]
            for r in rows
        ],
        title=f"Candidates, best UF1 first (majority class: {pct(rows[0]['majority'])} accuracy)",
        csv_header=list(rows[0]),
        csv_rows=[list(r.values()) for r in rows],
    )
    rep.figure(
        "pareto",
        _pareto_figure(rows, cfg.deploy),
        "UF1 against parameters and against batch-1 latency (JAX, flow included, this machine); "
        "the line joins the front (no candidate is cheaper and better); stars: the paper's "
        "Vy-3CL and ResNet8.",
    )
    if timing:
        rep.table(
            "together",
            [
                "candidates",
                "together",
                "one by one",
                "candidates / hour together",
                "one by one",
                "speed-up",
            ],  # fmt: skip
            [
                [
                    ", ".join(timing["nets"]),
                    f"{timing['together_s']:.1f} s",
                    f"{timing['one_by_one_s']:.1f} s",
                    timing["together_per_hour"],
                    timing["one_by_one_per_hour"],
                    f"{timing['speedup']:.2f}x",
                ]
            ],  # fmt: skip
            title="Training candidates that share a program together, against one by one (the "
            "same run, compilation included)",
        )
    if int8 and "float" in int8:
        rep.table(
            "int8",
            ["network", "accuracy", "UF1", "UAR", f"ONNX Runtime ms ({cfg.deploy}², batch 1)"],
            [
                [
                    "Vy-3CL float32",
                    pct(int8["float"]["accuracy"]),
                    num(int8["float"]["uf1"], 3),
                    num(int8["float"]["uar"], 3),
                    num(int8["onnx_float_ms"], 2),
                ],
                [
                    "Vy-3CL int8",
                    pct(int8["int8"]["accuracy"]),
                    num(int8["int8"]["uf1"], 3),
                    num(int8["int8"]["uar"], 3),
                    num(int8["onnx_int8_ms"], 2),
                ],
            ],  # fmt: skip
            title=f"int8 (every fold of seed {int8['seed']}, {int8['n']} held-out clips; "
            f"predictions agree on {pct(int8['agree'])})",
        )
        rep.text(
            "Quantised: the network's "
            + ", ".join(int8["quantised"])
            + " nodes (int8 weights per channel, uint8 activations, ranges calibrated on 64 of "
            "each fold's training clips); the flow, resize and normalisation stay float32."
        )
    elif int8:
        rep.text(f"int8: not measured ({int8['note']}).")
    if ctx.model_text("vy-3cl"):
        rep.text(ctx.model_text("vy-3cl"))
    return rep.write(
        report.summary(
            "efficiency",
            cfg,
            data,
            "vy-3cl",
            {n: r.row() for n, r in refs.items()},
            space={k: list(v) for k, v in cfg.space.items()},
            candidates=rows,
            together=timing,
            int8=int8,
            model=str(ctx.model_dir("vy-3cl") or ""),
        )
    )


def _pareto_figure(rows: list[dict], side: int):
    from merjax.figures import pareto_figure

    labels = (f"parameters ({side}x{side})", f"latency, ms ({side}x{side}, batch 1, JAX)")
    return pareto_figure(rows, ("params", "latency_ms"), labels, marked=REFERENCES)
