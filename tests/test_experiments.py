"""The experiments and the absl entry point, end to end on the tiny synthetic database."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from merjax import config as config_lib
from merjax import context, metrics, runner

ROOT = Path(__file__).resolve().parents[1]
HEADLINE_KEYS = ("accuracy", "uf1", "uar", "majority", "headline", "configs")


def _csv(path: Path) -> list[list[str]]:
    with open(path) as f:
        return list(csv.reader(f))


def test_profiles_say_what_they_are():
    paper = config_lib.base("paper")
    assert (paper.size, paper.num_folds, paper.train.epochs, paper.train.batch_size) == (
        64,
        None,
        150,
        64,
    )
    assert paper.flow.size == (64, 64) and "leave-one-subject-out" in paper.protocol
    quick = runner.make_config("input_study", "quick")
    assert len(quick.nets) == 16 and "4 subject-grouped folds" in quick.protocol
    assert runner.make_config("depth_study", "paper").nets[0] == "resnet18"


def test_experiments_are_files_at_the_top_level():
    assert runner.experiments_dir() == ROOT / "experiments"
    assert set(runner.available()) >= {
        "input_study",
        "depth_study",
        "similarity",
        "performance",
        "class_average_flow",
        "paper",
    }
    with pytest.raises(
        ValueError,
        match="unknown experiment 'table10'; available: casme3, challenge, class_average_flow, ",
    ):
        runner.find("table10")
    with pytest.raises(ValueError, match="no such file"):
        runner.find("nowhere/table10.py")
    # A path works as a name does (flax-style config files), from any folder.
    by_path = runner.make_config(str(ROOT / "experiments" / "input_study.py"), "quick")
    assert by_path == runner.make_config("input_study", "quick")


def test_experiments_folder_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text(
        "from merjax.config import base\n"
        "def config(profile):\n    return base(profile).replace(nets=('vy-1cl',), "
        "headline='vy-1cl')\n"
        "def run(ctx):\n    return {}\n"
    )
    (tmp_path / "broken.py").write_text("def config(profile):\n    pass\n")
    monkeypatch.setenv("MERJAX_EXPERIMENTS", str(tmp_path))
    assert runner.available() == ["broken", "mine"]
    assert runner.make_config("mine", "tiny").nets == ("vy-1cl",)
    with pytest.raises(ValueError, match="defines no run"):
        runner.load("broken")
    monkeypatch.setenv("MERJAX_EXPERIMENTS", str(tmp_path / "none"))
    with pytest.raises(ValueError, match="a pip install brings the library, not experiments/"):
        runner.find("input_study")


def test_config_json_says_what_ran_where(tmp_path):
    cfg = runner.make_config("input_study", "tiny")
    doc, line = runner.describe_config("input_study", ROOT / "experiments" / "input_study.py", cfg)
    doc = json.loads(json.dumps(doc, default=str))
    assert doc["config"]["train"]["epochs"] == cfg.train.epochs and doc["config"]["nets"] == list(
        cfg.nets
    )
    assert doc["strategy"] == {"requested": "auto", "resolved": "loop", "chunk": None}
    assert doc["conv_impl"] == {"requested": "auto", "resolved": "im2col"}
    assert (
        doc["backend"] == "cpu"
        and doc["devices"]
        and {"merjax", "jax", "flax"} <= set(doc["versions"])
    )
    assert "strategy" in line and "cpu" in line


def test_accuracy_vs_params_has_a_line_per_input():
    """Four representations: four solid lines of ours and four dashed of the paper's, one colour
    each, in order of parameters (not table order)."""
    input_study = runner.load("input_study")
    results = {
        f"{r}-{d}cl": {"accuracy": 0.5 + 0.01 * d, "majority": 0.47}
        for r in input_study.REPRESENTATIONS
        for d in input_study.DEPTHS
    }
    fig = input_study._params_figure(results, True)
    ax = fig.axes[0]
    solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 4]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(solid) == 4 and len(dashed) == 4
    for a, b in zip(solid, dashed, strict=True):
        assert a.get_color() == b.get_color()
        assert list(a.get_xdata()) == sorted(a.get_xdata())
    assert len({ln.get_color() for ln in solid}) == 4
    legend = fig.legends[0] if fig.legends else ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert {"Vx", "Vy", "Vx-Vy", "M", "paper", "1 CL", "4 CL"} <= set(texts)
    # On data other than the paper's: no dashed line, no "paper" in the legend.
    ax = input_study._params_figure(results, False).axes[0]
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert "paper" not in [t.get_text() for t in ax.get_legend().get_texts()]


def test_overrides_and_their_errors():
    cfg = runner.make_config(
        "input_study",
        "quick",
        [
            "train.epochs=3",
            "size=32",
            "num_folds=None",
            "nets=vy-1cl,vx-2cl",
            "flow.size=(32,32)",
            "train.seeds=1,2",
        ],
        seeds=None,
    )
    assert (cfg.train.epochs, cfg.size, cfg.num_folds, cfg.nets) == (
        3,
        32,
        None,
        ("vy-1cl", "vx-2cl"),
    )
    assert cfg.flow.size == (32, 32) and cfg.train.seeds == (1, 2)
    assert runner.make_config("input_study", "quick", seeds=[3, 4]).train.seeds == (3, 4)
    for bad, words in (
        ("epochs=3", "no field 'epochs'"),
        ("train.epochs=many", "cannot read"),
        ("size", "expected name=value"),
        ("size.x=1", "no sub-fields"),
    ):
        with pytest.raises(ValueError, match=words):
            runner.make_config("input_study", "quick", [bad])
    with pytest.raises(ValueError, match="unknown experiment"):
        runner.make_config("table10")


@pytest.mark.slow
def test_every_experiment_writes_its_files(paper_run):
    workdir, summary = paper_run
    expected = {
        "class_average_flow": [
            "figure6.png",
            "class_average_flow.npz",
            "table_flow.csv",
            "table_nearest_mean.md",
        ],
        "depth_study": [
            "table3.csv",
            "table3.md",
            "accuracy_vs_depth.png",
            "runs/resnet4/metrics.jsonl",
            "models/resnet4/model.json",
        ],
        "input_study": [
            "table4.csv",
            "table4.md",
            "accuracy_vs_params.png",
            "confusion_vy-3cl.png",
            "models/vy-3cl/model.json",
        ],
        "similarity": [
            "table5.csv",
            "table5_paper_style.md",
            "similarity_vy-3cl.png",
            "similarity_resnet2.csv",
        ],
        "performance": ["table8.md", "figure7.csv", "figure7.png", "table9.csv", "timing.csv"],
    }
    for part, files in expected.items():
        part_summary = json.loads((workdir / part / "summary.json").read_text())
        for key in HEADLINE_KEYS:
            assert key in part_summary, (part, key)
        assert 0 <= part_summary["accuracy"] <= 1 and 0 < part_summary["majority"] < 1
        for f in files + ["report.md", "summary.json"]:
            assert (workdir / part / f).is_file(), f"{part}/{f}"
        for f in part_summary["files"]:
            assert (workdir / part / f).is_file(), f"{part}/{f} listed but missing"
            if f.endswith((".png", ".csv", ".npz")):
                assert f"({f})" in (workdir / part / "report.md").read_text(), (
                    f"{part}: {f} not linked"
                )
    assert summary["experiment"] == "paper" and summary["headline"] == "vy-3cl"
    assert set(summary["parts"]) == set(expected)
    report = (workdir / "report.md").read_text()
    for part in expected:
        assert f"{part}/report.md" in report


@pytest.mark.slow
def test_networks_trained_once_and_shared(paper_run):
    """`performance` reuses input_study's Vy-3CL: same numbers, and the run's metrics lines."""
    workdir, _ = paper_run
    a = json.loads((workdir / "input_study" / "summary.json").read_text())["configs"]["vy-3cl"]
    b = json.loads((workdir / "performance" / "summary.json").read_text())["configs"]["vy-3cl"]
    assert a["accuracy"] == b["accuracy"] and a["seconds"] == b["seconds"]
    lines = [
        json.loads(line)
        for line in (workdir / "input_study" / "runs" / "vy-3cl" / "metrics.jsonl").open()
    ]
    folds = [line for line in lines if line["kind"] == "fold"]
    assert len(folds) == 2 and sum(f["n"] for f in folds) == a["n"]
    held = [s for f in folds for s in f["held_out"]]
    assert len(held) == len(set(held)), "a subject held out twice"
    assert [line["kind"] for line in lines].count("pooled") == 1


@pytest.mark.slow
def test_tables_have_the_papers_layout(paper_run):
    workdir, _ = paper_run
    t4 = _csv(workdir / "input_study" / "table4.csv")
    assert t4[0] == [
        "input",
        "CL",
        "accuracy",
        "accuracy_std",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "paper",
        "uf1",
        "uf1_ci_low",
        "uf1_ci_high",
        "uar",
        "uar_ci_low",
        "uar_ci_high",
        "params",
        "majority",
    ]
    assert {row[0] for row in t4[1:]} == {"Vy"} and [row[6] for row in t4[1:]] == [
        "0.5809",
        "0.6017",
    ]
    for row in t4[1:]:  # each score with its interval, as summary.json has them
        cells = dict(zip(t4[0], row, strict=True))
        for key in ("accuracy", "uf1", "uar"):
            assert 0 <= float(cells[f"{key}_ci_low"]) <= float(cells[f"{key}_ci_high"]) <= 1
    report4 = (workdir / "input_study" / "report.md").read_text()
    assert (
        "| | 1 CL | 2 CL | 3 CL | 4 CL |" in report4
        and "| Vx-Vy |" in report4
        and "(60.17%)" in report4
    )
    t3 = _csv(workdir / "depth_study" / "table3.csv")
    assert t3[0][:3] == ["CL", "params", "paper_params"]
    assert [r[0] for r in t3[1:]] == ["3", "1"] and [r[2] for r in t3[1:]] == ["104197", "91525"]
    t5 = _csv(workdir / "similarity" / "table5.csv")
    assert len(t5) == 6 and len(t5[0]) == 11 and t5[1][2] == "0.6007"  # ours, paper per class
    t9 = _csv(workdir / "performance" / "table9.csv")
    assert [r[2] for r in t9[1:]] == [
        "82373",
        "168997",
        "331301",
        "712933",
        "165541",
        "348005",
        "709477",
        "1620197",
    ]
    f7 = _csv(workdir / "performance" / "figure7.csv")
    assert len(f7) == 6 and float(f7[3][6]) == pytest.approx(0.833)
    timing = _csv(workdir / "performance" / "timing.csv")
    assert [r[0] for r in timing[1:]] == ["flow", "network", "total"]
    assert all(float(r[1]) > 0 and float(r[4]) > 0 for r in timing[1:])
    table8 = (workdir / "performance" / "table8.md").read_text()
    assert "majority class" in table8 and "60.17%" in table8


@pytest.mark.slow
def test_class_average_flow_is_an_honest_classifier(paper_run, cache_dir):
    """Each held-out subject is classified by the class means of the *other* subjects only.
    Recomputed here in plain NumPy from the same cached flows: a classifier whose means include
    the held-out subject (the figure's means) scores differently on this data and fails, as does
    one on another representation or with the labels out of order."""
    workdir, _ = paper_run
    s = json.loads((workdir / "class_average_flow" / "summary.json").read_text())
    assert s["headline"] == "nearest-class-mean-vy"
    assert set(s["configs"]) == {f"nearest-class-mean-{k}" for k in ("vx", "vy", "vxvy", "mag")}
    cfg = runner.make_config("class_average_flow", "tiny")
    data = context.Context(
        cfg,
        workdir / "probe",
        options=context.RunOptions(profile="tiny", cache_dir=cache_dir),
        progress=None,
    ).data()
    uv, y, subjects = (
        np.asarray(data.flows.apex, np.float64),
        data.labels,
        np.asarray(data.subjects),
    )
    reps = {
        "vx": uv[..., :1],
        "vy": uv[..., 1:],
        "vxvy": uv,
        "mag": np.linalg.norm(uv, axis=-1, keepdims=True),
    }

    def nearest_mean(x, leak):
        x = x.reshape(len(x), -1)
        pred = np.empty(len(x), int)
        for subject in np.unique(subjects):
            test = subjects == subject
            fit = np.ones_like(test) if leak else ~test
            mu, sd = x[fit].mean(0), x[fit].std(0) + 1e-8
            z = (x - mu) / sd
            means = np.stack(
                [
                    z[fit & (y == k)].mean(0)
                    if (fit & (y == k)).any()
                    else np.full(z.shape[1], np.inf)
                    for k in range(5)
                ]
            )
            pred[test] = ((z[test][:, None] - means[None]) ** 2).sum(-1).argmin(1)
        return pred

    for kind, x in reps.items():
        honest = nearest_mean(x, leak=False)
        row = s["configs"][f"nearest-class-mean-{kind}"]
        assert row["accuracy"] == pytest.approx(float((honest == y).mean()), abs=1e-9), kind
        assert row["uf1"] == pytest.approx(metrics.uf1(y, honest, 5), abs=1e-9), kind
    leaky = nearest_mean(reps["vy"], leak=True)
    assert s["accuracy"] != pytest.approx(float((leaky == y).mean()), abs=1e-9), (
        "the leak must be visible here"
    )


@pytest.mark.slow
def test_scores_recompute_from_the_pooled_predictions(paper_run):
    """summary.json, table4.csv and the pooled lines of runs/<net>/metrics.jsonl say what the
    held-out predictions in metrics.jsonl score: accuracy, UF1 and UAR per seed, their mean over
    seeds, and per dataset. A table that reported the training accuracy, the last fold's, or
    another seed's would fail."""
    workdir, summary = paper_run
    s = json.loads((workdir / "input_study" / "summary.json").read_text())
    table = {(r[0], r[1]): r for r in _csv(workdir / "input_study" / "table4.csv")[1:]}
    for net, row in s["configs"].items():
        lines = [
            json.loads(x) for x in (workdir / "input_study" / "runs" / net / "metrics.jsonl").open()
        ]
        preds = [x for x in lines if x["kind"] == "predictions"]
        pooled = {x["seed"]: x for x in lines if x["kind"] == "pooled"}
        assert [p["seed"] for p in preds] == row["seeds"] == sorted(pooled)
        scores = []
        for p in preds:
            y, yhat, ds = np.array(p["labels"]), np.array(p["preds"]), np.array(p["datasets"])
            held = yhat >= 0
            assert held.all()  # LOSO: every sample held out once
            got = {
                "accuracy": float((yhat == y).mean()),
                "uf1": metrics.uf1(y, yhat, 5),
                "uar": metrics.uar(y, yhat, 5),
            }
            for key, value in got.items():
                assert pooled[p["seed"]]["all"][key] == pytest.approx(value, abs=1e-12), (net, key)
            for d in set(ds):
                assert pooled[p["seed"]][d]["accuracy"] == pytest.approx(
                    float((yhat[ds == d] == y[ds == d]).mean())
                )
            scores.append(got)
        for key in ("accuracy", "uf1", "uar"):
            assert row[key] == pytest.approx(np.mean([g[key] for g in scores]), abs=1e-12), (
                net,
                key,
            )
        rep, depth = net.rsplit("-", 1)
        csv_row = table[("Vy", depth[:-2])] if rep == "vy" else None
        assert csv_row is not None and float(csv_row[2]) == pytest.approx(row["accuracy"], abs=1e-9)
        assert float(csv_row[7]) == pytest.approx(row["uf1"], abs=1e-9)
    assert summary["parts"]["input_study"]["accuracy"] == s["accuracy"]


def _main(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m merjax.main`` as a user runs it (jax probes for accelerators)."""
    env = dict(os.environ)
    env.pop("JAX_PLATFORMS", None)
    env.pop("MERJAX_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "merjax.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def main_in_process(command_in_process):
    from merjax import main

    return lambda *args: command_in_process(main.main, *args)


@pytest.mark.slow
def test_main_console_is_quiet_and_a_run_is_watchable(tmp_path, cache_dir, main_in_process, caplog):
    """As a process, from the repository root: merjax's lines only (no absl/orbax INFO, no TPU
    probe), and the workdir has config.json and a metrics.jsonl with a line per epoch. With
    --log_level=info the libraries' lines come back (in process)."""
    w = tmp_path / "w"
    one_net = [f"--cache_dir={cache_dir}", "--profile=tiny", "--set=nets=vy-1cl"]
    one_net += ["--set=headline=vy-1cl"]
    out = _main(
        "--experiment=input_study", f"--workdir={w}", "--set=train.epochs=3", *one_net, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    console = out.stdout + out.stderr
    assert not re.search(r"^[IWE]\d{4} ", console, re.M), console  # absl's log-line prefix
    assert "orbax" not in console.lower() and "tpu" not in console.lower(), console
    assert "input_study: 1 x cpu (cpu), strategy loop (auto), im2col convolutions" in out.stdout
    assert (w / "models" / "vy-1cl" / "model.json").is_file()  # orbax did write
    assert json.loads((w / "config.json").read_text())["config"]["nets"] == ["vy-1cl"]
    lines = [
        json.loads(x) for x in (w / "runs" / "vy-1cl" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [x["epoch"] for x in lines if x["kind"] == "epoch"] == [1, 2, 3]
    assert [x["kind"] for x in lines][-1] == "pooled"
    caplog.set_level(logging.DEBUG)
    louder = [f"--workdir={w}2", "--set=train.epochs=1", "--log_level=info"]
    code, _, err = main_in_process("--experiment=input_study", *louder, *one_net)
    info = [
        r.getMessage() for r in caplog.records if r.name == "absl" and r.levelno == logging.INFO
    ]
    assert code == 0 and any("checkpoint" in m for m in info), err


@pytest.mark.slow
def test_main_runs_an_experiment_from_any_folder(tmp_path, cache_dir, main_in_process, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = main_in_process(
        "--experiment=class_average_flow",
        "--profile=tiny",
        f"--workdir={tmp_path / 'w'}",
        f"--cache_dir={cache_dir}",
    )
    assert code == 0, err
    assert "class_average_flow (nearest-class-mean-vy): accuracy" in out
    assert (tmp_path / "w" / "report.md").is_file()
    # the console is kept in the workdir, a header and an ending per run, appended by a rerun
    code, _, err = main_in_process(
        "--experiment=class_average_flow",
        "--profile=tiny",
        f"--workdir={tmp_path / 'w'}",
        f"--cache_dir={cache_dir}",
    )
    log = (tmp_path / "w" / "console.log").read_text().splitlines()
    assert code == 0 and log[0].startswith("--- ") and "--experiment=class_average_flow" in log[0]
    assert "total: 18 samples, 6 subjects" in log and log.count("--- finished") == 2
    assert not (tmp_path / "w" / ".merjax.lock").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment=table10"], "table10"),
        (["--workdir=FILE"], "is a file"),
        (["--casme2_root=/nowhere"], "needs --casme2_root and --samm_root"),
        (["--casme2_root=/nowhere", "--samm_root=/nowhere/"], "a database given twice"),
        (
            ["--casme2_root=/a", "--samm_root=/b", "--casme3_root=/c"],
            "--casme3_root is not read by this experiment",
        ),
        (["--experiment=casme3", "--samm_root=/b"], "needs --casme3_root"),
        (["--experiment=holdout", "--casme2_root=/a"], "needs --casme2_root and --samm_root"),
        (["--casme2_root=/nowhere/casme", "--samm_root=/nowhere/samm"], "/nowhere/casme"),
        (["--set=train.epochs=lots"], "cannot read 'lots'"),
        (["--seeds=a,b"], "--seeds must be integers"),
    ],
)
def test_main_rejects_bad_input_clearly(tmp_path, args, message, main_in_process, monkeypatch):
    """Each mistake ends with one line naming it, before any work (in process: the same main())."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("not a folder")
    args = [a.replace("FILE", str(tmp_path / "FILE")) for a in args]
    code, _, err = main_in_process(
        "--profile=tiny", f"--cache_dir={tmp_path / 'cache'}", f"--workdir={tmp_path / 'w'}", *args
    )  # a later --workdir wins
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err
    # At most the folders themselves were made (checked writable): no data, no flows.
    assert not list((tmp_path / "cache").glob("*")), "work began"


@pytest.mark.slow
def test_final_model_is_saved_and_loads(paper_run):
    """The headline network, trained on every subject, is a model folder that predict reads."""
    from merjax import inference

    workdir, _ = paper_run
    s = json.loads((workdir / "input_study" / "summary.json").read_text())
    model = inference.load(s["model"], expect_net="vy-3cl")
    assert model.spec.trained_on["subjects"] == 6 and model.spec.input_size == 8
    assert "models/vy-3cl" in (workdir / "input_study" / "report.md").read_text()
    frames = np.random.default_rng(0).integers(0, 255, (2, *model.spec.frame_size), np.uint8)
    probs = model.classify(frames[:1], frames[1:])
    assert probs.shape == (1, 5) and probs.sum() == pytest.approx(1, abs=1e-5)
    # calibrated on the held-out LOSO logits of its seed: every clip, once
    c = model.spec.calibration
    assert c["clips"] == 18 and 0.01 < model.spec.temperature < 100
    assert all(0 <= c[k] <= 1 for k in ("ece_before", "ece_after"))
    assert model.spec.flow_range["clips"] == 18 and model.spec.flow_range["magnitude_p99"] > 0


def test_an_experiment_on_tvl1_flows(tmp_path, cache_dir):
    """`--set=flow.method=tvl1` reaches the flows and says so in the report."""
    s = runner.run(
        "class_average_flow",
        tmp_path / "w",
        profile="tiny",
        cache_dir=cache_dir,
        progress=None,
        overrides=["flow.method=tvl1", "flow.tvl1.num_iter=5"],
    )
    assert "TV-L1" in s["protocol"] or "TV-L1" in (tmp_path / "w" / "report.md").read_text()
    assert s["config"]["flow"]["method"] == "tvl1" and s["config"]["flow"]["tvl1"]["num_iter"] == 5


@pytest.mark.slow
def test_paper_experiments_on_another_composite_name_its_classes(tmp_path, cache_dir, tiny_db):
    """The paper's experiments on MEGC 2019's three classes: every table and figure names
    negative / positive / surprise (not MEGC 2018's five objective classes, which the class
    names used to default to), and no paper column stands beside numbers of other classes."""
    runner.run(
        "paper",
        tmp_path,
        profile="tiny",
        overrides=["composite=megc2019", "train.epochs=1"],
        cache_dir=cache_dir,
        progress=None,
    )
    classes = ["negative", "positive", "surprise"]
    flow_table = _csv(tmp_path / "class_average_flow" / "table_flow.csv")
    assert [r[0] for r in flow_table[1:]] == classes
    with np.load(tmp_path / "class_average_flow" / "class_average_flow.npz") as f:
        assert f["mean_flow"].shape[0] == 3
    for table in ("table5", "table5_paper_style"):
        sim = _csv(tmp_path / "similarity" / f"{table}.csv")
        assert [r[0] for r in sim[1:]] == classes
        assert all(v == "" for r in sim[1:] for v in r[2::2])  # the paper's cells: blank
    fig7 = _csv(tmp_path / "performance" / "figure7.csv")
    assert [r[0] for r in fig7[1:]] == classes and all(v == "" for r in fig7[1:] for v in r[2::2])
    table4 = _csv(tmp_path / "input_study" / "table4.csv")
    assert all(r[table4[0].index("paper")] == "" for r in table4[1:])
    for part in ("input_study", "similarity", "performance", "depth_study"):
        assert "The paper's columns are blank" in (tmp_path / part / "report.md").read_text()


def test_a_network_whose_interval_holds_the_majority_score_is_named():
    """Before: a deep network that had not trained in the quick profile's few epochs (Vx-4CL,
    near the majority class) read as a finding about depth."""
    from merjax import report

    rows = {
        "vx-4cl": {"accuracy_ci": [0.44, 0.61], "majority": 0.47},
        "vy-3cl": {"accuracy_ci": [0.85, 0.95], "majority": 0.47},
    }
    text = report.near_majority_text(rows, 6)
    assert "vx-4cl" in text and "vy-3cl" not in text and "After 6 epochs" in text
    assert report.near_majority_text({"vy-3cl": rows["vy-3cl"]}, 6) == ""
