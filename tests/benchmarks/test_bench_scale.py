"""benchmarks/bench_scale.py's ddp section: rows from _scale_ddp.py when it exists, else a
note on stderr (no Spark needed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _module():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH / "bench_scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ddp_section_uses_the_module_or_notes_its_absence(tmp_path, monkeypatch, capsys):
    bench = _module()
    monkeypatch.setattr(bench, "HERE", tmp_path)
    assert bench.main(["--sections", "ddp"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "ddp skipped" in captured.err
    (tmp_path / "_scale_ddp.py").write_text(
        "def rows(args):\n"
        "    yield {'name': 'ddp', 'processes': 1, 'model': 'M', 'events_per_second': 1.0,\n"
        "           'final_loss': float(args.ddp_threads)}\n")
    assert bench.main(["--sections", "ddp"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row == {"name": "ddp", "processes": 1, "model": "M", "events_per_second": 1.0,
                   "final_loss": 1.0}
