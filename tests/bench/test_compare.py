"""`hwnas compare` and `hwnas report`: config errors, resumable grids, locks, executors, reports."""

from __future__ import annotations

import base64
import json
import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from hwnas.bench.cli import main
from hwnas.bench.compare import load_config, run_compare, run_one
from hwnas.bench.compare.run import locked

CONFIG = """
[compare]
seeds = [0, 1]
budgets = [15, 30]
executor = "serial"

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
devices = ["dev_a"]
objectives = ["accuracy", "latency"]

[[strategies]]
name = "random"

[[strategies]]
name = "evolution"
options = { population = 10, sample_size = 3 }
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(CONFIG)
    return path


def _tables(out: Path) -> tuple[bytes, pd.DataFrame]:
    return (out / "evaluations.parquet").read_bytes(), pd.read_parquet(out / "indicators.parquet")


def test_grid_runs_scores_and_resumes_without_rerunning(capsys, synthetic_data, config, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, err = run(capsys, "--data", str(synthetic_data), "compare", str(config),
                            "--out", str(out))
    assert code == 0, err
    assert "4 runs: 4 run, 0 already finished" in stdout
    ev = pd.read_parquet(out / "evaluations.parquet")
    assert set(ev["strategy"]) == {"random", "evolution"} and set(ev["seed"]) == {0, 1}
    assert ev.groupby(["strategy", "seed"]).size().eq(30).all()
    ind = pd.read_parquet(out / "indicators.parquet")
    assert sorted(set(ind["budget"])) == [15, 30]
    assert ind["hv_ratio"].between(0, 1).all() and ind["recall"].between(0, 1).all()
    # more evaluations never lower the hypervolume of what a run has found
    wide = ind.pivot_table(index=["strategy", "seed"], columns="budget", values="hv_ratio")
    assert (wide[30] >= wide[15]).all()
    for folder in (out / "runs" / "nb201").glob("*/*"):
        assert {"evaluations.csv", "front.csv", "run.json"} <= {p.name for p in folder.iterdir()}

    before = (out / "runs/nb201/evolution/1/evaluations.csv").read_bytes()
    parquet, _ = _tables(out)
    code, stdout, _ = run(capsys, "--data", str(synthetic_data), "compare", str(config),
                          "--out", str(out))
    assert code == 0 and "0 run, 4 already finished" in stdout
    assert _tables(out)[0] == parquet

    # a run without its completion record is rerun from its seed, and comes out the same
    (out / "runs/nb201/evolution/1/run.json").unlink()
    code, stdout, _ = run(capsys, "--data", str(synthetic_data), "compare", str(config),
                          "--out", str(out))
    assert code == 0 and "1 run, 3 already finished" in stdout
    assert (out / "runs/nb201/evolution/1/evaluations.csv").read_bytes() == before


def test_a_locked_run_is_left_to_its_owner(synthetic_data, config, tmp_path):
    spec = load_config(config).runs()[0]
    with locked(tmp_path / spec.folder) as mine:
        assert mine
        result = run_one(spec, str(tmp_path), str(synthetic_data))
    assert result["status"] == "locked"
    assert not (tmp_path / spec.folder / "run.json").exists()
    assert run_one(spec, str(tmp_path), str(synthetic_data))["status"] == "done"


@pytest.mark.slow
def test_process_pool_gives_the_serial_result(synthetic_data, config, tmp_path):
    cfg = load_config(config)
    run_compare(cfg, tmp_path / "serial", str(synthetic_data), executor="serial", score=False)
    manifest = run_compare(cfg, tmp_path / "pool", str(synthetic_data), executor="process",
                           workers=2, score=False)
    assert manifest["counts"]["done"] == 4
    for spec in cfg.runs():
        a = (tmp_path / "serial" / spec.folder / "evaluations.csv").read_bytes()
        assert a == (tmp_path / "pool" / spec.folder / "evaluations.csv").read_bytes()


@pytest.mark.slow
def test_ray_executor_on_a_local_cluster(synthetic_data, config, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hwnas[ray]')")
    cfg = load_config(config)
    run_compare(cfg, tmp_path / "serial", str(synthetic_data), executor="serial", score=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        manifest = run_compare(cfg, tmp_path / "ray", str(synthetic_data), executor="ray",
                               score=False)
    finally:
        ray.shutdown()
    assert manifest["executor"] == "ray" and manifest["counts"]["done"] == 4
    for spec in cfg.runs():
        a = (tmp_path / "serial" / spec.folder / "evaluations.csv").read_bytes()
        assert a == (tmp_path / "ray" / spec.folder / "evaluations.csv").read_bytes()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('name = "evolution"', 'name = "annealing"'),
     "unknown strategy 'annealing'; valid: "),
    (lambda t: t.replace('["accuracy", "latency"]', '["accuracy", "joules"]'),
     "unknown objectives ['joules']"),
    (lambda t: t.replace('devices = ["dev_a"]\n', ""), "the latency objective needs 'device'"),
    (lambda t: t.replace("seeds = [0, 1]", "seeds = []"), "'seeds' must be a non-empty list"),
    (lambda t: t.replace("sample_size = 3", "sample = 3"),
     "unknown option(s) sample for 'evolution'; valid: population, sample_size"),
    (lambda t: t.replace('executor = "serial"', 'executor = "slurm"'),
     "unknown executor 'slurm'; valid: process, ray, serial"),
    (lambda t: t.replace("[[strategies]]", "[[strategies]", 1), "invalid TOML"),
    (lambda t: t.replace('name = "random"', 'name = "random"\nprior = ["dev_b"]'),
     "strategy 'random' takes no prior; valid: surrogate"),
    (lambda t: t.replace("sample_size = 3", 'sample_size = 3, prior = ["dev_b"]'),
     "'prior' is a key of the strategy, not of its options"),
    (lambda t: t.replace('name = "evolution"', 'name = "surrogate"\nprior = ["dev_a"]')
     .replace("options = { population = 10, sample_size = 3 }", ""),
     "prior 'dev_a' is an objective of problem 'nb201'"),
    (lambda t: t.replace('name = "evolution"', 'name = "surrogate"')
     .replace("options = { population = 10, sample_size = 3 }", "options = { forest = [2] }"),
     "forest: objective positions in 0..1, got [2]"),
])
def test_bad_config_is_one_line_and_exit_2(capsys, synthetic_data, config, tmp_path, edit,
                                          message):
    config.write_text(edit(CONFIG))
    code, _, err = run(capsys, "--data", str(synthetic_data), "compare", str(config),
                       "--out", str(tmp_path / "x"))
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_options_are_checked_for_the_config_s_number_of_objectives(config):
    """A forest on the third objective is valid once a problem has three objectives."""
    config.write_text(CONFIG.replace('["accuracy", "latency"]', '["accuracy", "latency", "params"]')
                      .replace('name = "evolution"', 'name = "surrogate"')
                      .replace("options = { population = 10, sample_size = 3 }",
                               "options = { forest = [2] }"))
    assert load_config(config).strategies["surrogate"]["options"] == {"forest": [2]}


def test_a_strategy_with_a_prior_runs_in_the_grid(synthetic_data, config, tmp_path):
    config.write_text(CONFIG + '\n[[strategies]]\nname = "surrogate"\nlabel = "sur-prior"\n'
                      'prior = ["dev_b"]\noptions = { initial = 10 }\n')
    cfg = load_config(config)
    spec = next(s for s in cfg.runs() if s.strategy == "sur-prior")
    assert spec.config.prior == ["dev_b"]
    result = run_one(spec, str(tmp_path / "grid"), str(synthetic_data))
    assert result["status"] == "done", result
    record = json.loads((tmp_path / "grid" / spec.folder / "run.json").read_text())
    assert record["config"]["prior"] == ["dev_b"] and record["evaluations"] == 30


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run(capsys, "compare", str(tmp_path / "nope.toml"))
    assert code == 2 and "cannot read config" in err and err.count("\n") == 1


@pytest.fixture
def finished_grid(synthetic_data, config, tmp_path) -> Path:
    out = tmp_path / "cmp"
    run_compare(load_config(config), out, str(synthetic_data))
    return out


def test_report_writes_self_contained_html_markdown_and_figures(capsys, synthetic_data,
                                                                 finished_grid, tmp_path):
    rep = tmp_path / "rep"
    code, stdout, err = run(capsys, "--data", str(synthetic_data), "report", str(finished_grid),
                            "--out", str(rep))
    assert code == 0, err
    html = (rep / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 2 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n"
                                    for i in images)
    assert "<img" in html and "src=\"http" not in html  # nothing fetched from elsewhere
    md = (rep / "report.md").read_text()
    for strategy in ("random", "evolution"):
        assert strategy in md and strategy in html
    assert "Holm" in md and "|" in md
    assert len(list(rep.glob("*.png"))) == len(images)


def test_report_of_a_corrupt_folder_is_one_line(capsys, finished_grid, synthetic_data, tmp_path):
    (finished_grid / "compare.json").write_text("{ not json")
    code, _, err = run(capsys, "--data", str(synthetic_data), "report", str(finished_grid),
                       "--out", str(tmp_path / "rep"))
    assert code == 2 and "corrupt" in err and err.count("\n") == 1, err
    code, _, err = run(capsys, "report", str(tmp_path / "nothing-here"), "--out",
                       str(tmp_path / "rep"))
    assert code == 2 and err.count("\n") == 1, err


@pytest.mark.slow
def test_report_opens_in_headless_chromium(synthetic_data, finished_grid, tmp_path):
    """Debian's chromium loads report.html with every image decoded and no console error."""
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium (apt install chromium) for the headless check")
    from hwnas.bench.report import build_report

    paths = build_report([finished_grid], tmp_path / "rep", str(synthetic_data))
    html = Path(paths["html"])
    # the page reports, in its title, how many images decoded; --dump-dom prints the final DOM
    probe = html.with_name("probe.html")
    probe.write_text(html.read_text().replace("</body>", textwrap.dedent("""
        <script>window.addEventListener('load', () => {
          const imgs = [...document.images];
          document.title = 'loaded ' + imgs.filter(i => i.complete && i.naturalWidth > 0).length
                           + ' of ' + imgs.length; });</script></body>""")))
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
              "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    title = re.search(r"<title>loaded (\d+) of (\d+)</title>", dom.stdout)
    assert title and title.group(1) == title.group(2) != "0", dom.stdout[:500]
    assert "Uncaught" not in dom.stderr and "CONSOLE(" not in dom.stderr, dom.stderr[-2000:]
    shot = tmp_path / "report.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2000", html.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_report_plots_predicted_against_measured(capsys, synthetic_data, finished_grid, tmp_path):
    rng = np.random.default_rng(0)
    measured = pd.DataFrame({"index": np.arange(50), "latency_ms": rng.uniform(1, 10, 50)})
    predicted = measured.assign(latency_ms=measured["latency_ms"] * rng.uniform(0.9, 1.1, 50))
    # the prediction covers more architectures than were measured; only shared ones count
    predicted = pd.concat([predicted, pd.DataFrame({"index": [99], "latency_ms": [3.0]})])
    measured.to_csv(tmp_path / "measured.csv", index=False)
    predicted.to_csv(tmp_path / "predicted.csv", index=False)
    rep = tmp_path / "rep"
    code, _, err = run(capsys, "--data", str(synthetic_data), "report", str(finished_grid),
                       "--out", str(rep), "--scatter", str(tmp_path / "predicted.csv"),
                       str(tmp_path / "measured.csv"))
    assert code == 0, err
    assert (rep / "predicted_vs_measured.png").stat().st_size > 5_000
    md = (rep / "report.md").read_text()
    rho = spearmanr(measured["latency_ms"], predicted["latency_ms"][:50]).statistic
    assert "## Predicted vs measured" in md and f"| 50 | {rho:.3f}" in md, md[-600:]

    measured.rename(columns={"latency_ms": "ms"}).to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = run(capsys, "--data", str(synthetic_data), "report", str(finished_grid),
                       "--out", str(rep), "--scatter", str(tmp_path / "predicted.csv"),
                       str(tmp_path / "bad.csv"))
    assert code == 2 and "needs an index (or arch) column and a latency_ms" in err
    assert err.count("\n") == 1
