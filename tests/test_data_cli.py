"""``edgevc data make-bench|baseline`` (the module is called directly until the lead lists it in COMMANDS)."""

from __future__ import annotations

import json
from pathlib import Path

from edgevc.cli.commands import data
from edgevc.cli.parser import Parser

TINY = str(Path(__file__).resolve().parents[1] / "recipes" / "tiny_ci.yaml")


def _run(*argv: str) -> int:
    p = Parser(prog="edgevc data")
    data.add_arguments(p)
    return data.run(p.parse_args(list(argv)))


def test_make_bench_from_a_recipe_prints_where_and_what(capsys):
    assert _run("make-bench", "--recipe", TINY, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["train"], info["test"], info["config"]["size"]) == (16, 8, 32)
    assert Path(info["root"], "bench.json").is_file() and info["labels"][0] == "pan_left"
    assert _run("make-bench", "--recipe", TINY) == 0
    assert "16 train, 8 test (8 frames, 32x32, 25.0 fps)" in capsys.readouterr().out


def test_baseline_prints_a_table_of_single_frame_and_mean(capsys):
    assert _run("baseline", "--recipe", TINY) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["baseline", "features"]
    assert [ln.split()[0] for ln in lines[1:]] == ["single_frame", "mean"]
    assert all(0.0 <= float(ln.split()[3]) <= 1.0 for ln in lines[1:])
