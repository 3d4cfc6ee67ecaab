"""The download cache against a local HTTP server on 127.0.0.1 (no real network)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recforge.data import download as dl
from recforge.data.download import MARKER, DownloadError, cache_dir, cached, cached_path, download
from recforge.data.readers import load

U_DATA = "1\t1\t4\t10\n1\t2\t3\t11\n2\t1\t5\t30\n"


def make_zip(files: dict[str, str], top: str | None = "ml-100k") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(f"{top}/{name}" if top else name, text)
    return buf.getvalue()


def make_tgz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"pack/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """Serves ``routes`` ({path: bytes}); ``/cut/...`` announces the full length but sends half."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                cut = self.path.startswith("/cut/")
                body = outer.routes.get(self.path.removeprefix("/cut") if cut else self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                self.wfile.flush()
                if cut:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    s.routes["/ml-100k.zip"] = make_zip({"u.data": U_DATA, "README": "test archive"})
    yield s
    s.close()


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith(".tmp-")) if cache.exists() else []


def test_download_extracts_verifies_and_records(server, tmp_path):
    body = server.routes["/ml-100k.zip"]
    digest = hashlib.sha256(body).hexdigest()
    path = download("ml-100k", cache_dir=tmp_path, url=server.url("/ml-100k.zip"), sha256=digest)
    assert path == tmp_path / "ml-100k"
    assert (path / "u.data").read_text() == U_DATA  # the archive's top folder is flattened
    manifest = json.loads((path / MARKER).read_text())
    assert manifest["sha256"] == digest and manifest["bytes"] == len(body)
    assert manifest["sha256_verified"] is True
    assert manifest["files"] == ["README", "u.data"]
    assert cached_path("ml-100k", tmp_path) == path
    assert list(cached(tmp_path)) == ["ml-100k"]
    assert leftovers(tmp_path) == []
    # the downloaded copy loads by name, with the catalog's rating scale
    ds = load("ml-100k", cache_dir=tmp_path)
    assert ds.interactions.nnz == 3 and ds.interactions.rating_scale == (1.0, 5.0)


def test_download_is_idempotent(server, tmp_path):
    url = server.url("/ml-100k.zip")
    first = download("ml-100k", cache_dir=tmp_path, url=url)
    second = download("ml-100k", cache_dir=tmp_path, url=url)
    assert first == second and server.requests == ["/ml-100k.zip"]
    # unknown digest: recorded on first download (trust on first use), not "verified"
    manifest = json.loads((first / MARKER).read_text())
    assert manifest["sha256_verified"] is False
    assert manifest["sha256"] == hashlib.sha256(server.routes["/ml-100k.zip"]).hexdigest()
    download("ml-100k", cache_dir=tmp_path, url=url, force=True)
    assert len(server.requests) == 2 and (first / "u.data").exists()
    assert leftovers(tmp_path) == []


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download("ml-100k", cache_dir=tmp_path, url=server.url("/ml-100k.zip"), sha256="0" * 64)
    assert not (tmp_path / "ml-100k").exists() and leftovers(tmp_path) == []
    assert cached_path("ml-100k", tmp_path) is None


def test_interrupted_transfer_never_looks_complete(server, tmp_path):
    with pytest.raises(DownloadError, match="incomplete download"):
        download("ml-100k", cache_dir=tmp_path, url=server.url("/cut/ml-100k.zip"))
    assert not (tmp_path / "ml-100k").exists() and leftovers(tmp_path) == []
    # a later complete download works
    assert (download("ml-100k", cache_dir=tmp_path, url=server.url("/ml-100k.zip"))
            / "u.data").exists()


def test_interrupted_extraction_never_looks_complete(server, tmp_path, monkeypatch):
    def boom(archive, url, dest):
        (dest / "u.data").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_extract", boom)
    with pytest.raises(KeyboardInterrupt):
        download("ml-100k", cache_dir=tmp_path, url=server.url("/ml-100k.zip"))
    assert not (tmp_path / "ml-100k").exists() and leftovers(tmp_path) == []


def test_force_replaces_an_old_copy_atomically(server, tmp_path):
    url = server.url("/ml-100k.zip")
    path = download("ml-100k", cache_dir=tmp_path, url=url)
    (path / "stale.txt").write_text("old")
    server.routes["/ml-100k.zip"] = make_zip({"u.data": U_DATA + "3\t3\t1\t40\n"})
    download("ml-100k", cache_dir=tmp_path, url=url, force=True)
    assert not (path / "stale.txt").exists()
    assert (path / "u.data").read_text().count("\n") == 4
    assert leftovers(tmp_path) == []


def test_foreign_folder_is_not_overwritten(server, tmp_path):
    mine = tmp_path / "ml-100k"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(DownloadError, match="not downloaded by recforge"):
        download("ml-100k", cache_dir=tmp_path, url=server.url("/ml-100k.zip"))
    assert (mine / "notes.txt").read_text() == "keep me" and server.requests == []
    download("ml-100k", cache_dir=tmp_path, url=server.url("/ml-100k.zip"), force=True)
    assert (mine / "u.data").exists() and not (mine / "notes.txt").exists()


def test_tar_archive(server, tmp_path):
    server.routes["/pack.tgz"] = make_tgz({"user_artists.dat": "userID\tartistID\tweight\n1\t2\t3\n"})
    path = download("mypack", cache_dir=tmp_path, url=server.url("/pack.tgz"))
    assert (path / "user_artists.dat").exists()
    assert load(path).interactions.nnz == 1


def test_corrupt_and_unsafe_archives(server, tmp_path):
    server.routes["/bad.zip"] = b"this is not a zip archive"
    with pytest.raises(DownloadError, match="not a valid archive"):
        download("bad", cache_dir=tmp_path, url=server.url("/bad.zip"))
    server.routes["/evil.zip"] = make_zip({"../../escape.txt": "x"}, top=None)
    with pytest.raises(DownloadError, match="unsafe path"):
        download("evil", cache_dir=tmp_path, url=server.url("/evil.zip"))
    assert not (tmp_path.parent / "escape.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_http_errors_and_unknown_names(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download("ml-100k", cache_dir=tmp_path, url=server.url("/missing.zip"))
    with pytest.raises(DownloadError, match="cannot reach"):
        download("ml-100k", cache_dir=tmp_path, url="http://127.0.0.1:9/nothing.zip", timeout=2)
    with pytest.raises(DownloadError, match="unknown data set"):
        download("no-such-set", cache_dir=tmp_path)
    with pytest.raises(DownloadError, match="cannot be downloaded automatically"):
        download("yoochoose", cache_dir=tmp_path)
    with pytest.raises(DownloadError, match="invalid data set name"):
        download("../x", cache_dir=tmp_path, url=server.url("/ml-100k.zip"))


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RECFORGE_DATA", str(tmp_path / "env-cache"))
    assert cache_dir() == tmp_path / "env-cache"
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("RECFORGE_DATA")
    assert cache_dir().parts[-2:] == ("recforge", "datasets")


def test_load_downloads_on_request(server, tmp_path, monkeypatch):
    from recforge.data import catalog

    entry = catalog.CATALOG["ml-100k"]
    monkeypatch.setitem(catalog.CATALOG, "ml-100k",
                        catalog.DatasetInfo(**{**entry.__dict__, "url": server.url("/ml-100k.zip")}))
    ds = load("ml-100k", cache_dir=tmp_path, download=True)
    assert ds.interactions.nnz == 3 and server.requests == ["/ml-100k.zip"]
