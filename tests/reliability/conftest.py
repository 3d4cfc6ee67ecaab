"""Shared helpers of the reliability suite: run the CLI in-process, keep an earlier output."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from recforge.cli.main import main

RATINGS = "user,item,rating,timestamp\n" + "".join(
    f"{u},{i},{(u * i) % 5 + 1},{1000 + 10 * u + i}\n" for u in range(1, 13) for i in range(1, 9))


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Earlier:
    """A folder holding an earlier run's output; ``intact()`` says it is byte-identical."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text('{"earlier": true}\n')
        (folder / "report.html").write_text("<html>earlier</html>\n")
        self.before = digest(folder)

    def intact(self) -> bool:
        return digest(self.folder) == self.before


@pytest.fixture
def earlier(tmp_path) -> Earlier:
    return Earlier(tmp_path / "out")


@pytest.fixture
def ratings_csv(tmp_path) -> Path:
    f = tmp_path / "ratings.csv"
    f.write_text(RATINGS)
    return f


@pytest.fixture
def cli(capsys):
    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "Traceback" not in out, err
        return code, out, err
    return run
