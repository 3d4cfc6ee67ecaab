"""Property-based fuzzing of the readers: a mutated CSV / TSV / RecBole file either loads or
raises :class:`recforge.DataError` (naming the file) — never another exception."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recforge.data import DataError
from recforge.data.readers import load

CSV = b"user,item,rating,timestamp\n" + b"".join(
    f"{u},{i},{(u * i) % 5 + 1},{1000 + 7 * u + i}\n".encode() for u in range(1, 7) for i in range(1, 5))
TSV = CSV.replace(b",", b"\t")
INTER = b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + b"".join(
    f"{u}\t{i}\t{(u + i) % 5 + 1}\t{900 + u * 3 + i}\n".encode() for u in range(1, 7) for i in range(1, 5))

NASTY = [b"", b",", b"\t", b"\n", b'"', b"nan", b"inf", b"-1", b"1e400", b"99999999999999999999",
         b"\xff\xfe", b"\x00", b"NULL", b" ", b"1.5", b"user", b"::", b"\r\n", b"a,b,c,d,e"]


@st.composite
def mutated(draw, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "token"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "replace" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 12))]
        elif kind == "truncate":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.sampled_from(NASTY))
    return bytes(data)


def _check(name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if name.endswith(".inter"):
            folder = Path(tmp) / "fuzz"
            folder.mkdir()
            path = folder / name
            target = folder
        else:
            path = Path(tmp) / name
            target = path
        path.write_bytes(content)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                load(str(target))
            except DataError as e:
                assert str(path.name) in str(e) or str(target) in str(e) or e.path is not None, str(e)


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated(CSV))
def test_mutated_csv_only_raises_data_errors(content):
    _check("ratings.csv", content)


@FUZZ
@given(mutated(TSV))
def test_mutated_tsv_only_raises_data_errors(content):
    _check("ratings.tsv", content)


@FUZZ
@given(mutated(INTER))
def test_mutated_recbole_only_raises_data_errors(content):
    _check("fuzz.inter", content)
