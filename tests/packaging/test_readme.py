"""The README is true: its two set-up commands come first and need nothing beside the clone, it
stays a short guide, and every Python block in it runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_two_setup_commands_first_and_self_contained():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    first, second = blocks[0].strip(), blocks[1].strip()
    assert first.endswith("hwnas quickstart") and second.endswith("python -m pytest")
    assert README.index(first) < README.index("```python")
    for command in (first, second):
        assert "\n" not in command and "shared" not in command and "HWNAS_DATA" not in command
    # the test command is the one CI runs
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text()


def test_readme_is_a_short_guide():
    assert len(README.splitlines()) <= 200


def test_the_ten_line_example_is_ten_lines_with_two_imports():
    example = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    lines = [line for line in example.splitlines() if line.strip()]
    assert len(lines) <= 10
    assert sum(line.startswith(("from ", "import ")) for line in lines) <= 2


def test_every_python_block_runs(capsys):
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        exec(compile(block, "README.md", "exec"), namespace)  # the README's own text
    out = capsys.readouterr().out
    assert "accuracy" in out and "latency" in out and "convs" in out
    from hwnas.search.strategies.base import STRATEGIES

    STRATEGIES.pop("sampler", None)  # registered by the README's example


def test_package_table_matches_the_code():
    table = README[README.index("## Layout"):README.index("## Development")]
    on_disk = {init.parent.relative_to(REPO).as_posix()
               for top in ("search", "latency", "meta", "bench")
               for init in (REPO / top).glob("*/__init__.py")}
    for sub in on_disk:  # every subpackage is in the table...
        assert f"`{sub.split('/')[1]}/`" in table, f"{sub}/ is missing from the README's layout"
    rows = [line for line in table.splitlines() if line.startswith("| `hwnas.")]
    for row in rows:  # ...and every folder the table names exists
        top = row.split("|")[2].strip().strip("`").rstrip("/")
        for name in __import__("re").findall(r"`(\w+)/`", row.split("|")[3]):
            assert (REPO / top / name / "__init__.py").is_file(), f"{top}/{name}/ is absent"
