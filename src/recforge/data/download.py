"""Download known data sets into a local cache, atomically and idempotently.

Layout of the cache (``$RECFORGE_DATA``, else ``<user cache dir>/recforge/datasets``)::

    <cache>/<name>/...                     the extracted files
    <cache>/<name>/.recforge-complete.json the manifest: url, bytes, sha256, time, files

A data set is complete exactly when its folder exists: the archive is downloaded to a
temporary file in the cache, its size is checked against ``Content-Length`` and its SHA-256
against the expected digest (when one is known), it is extracted into a temporary folder in
the cache, the manifest is written there, and only then is the folder renamed into place with
:func:`os.replace` (atomic on one file system). An interrupted download or extraction leaves
only temporary names (``.tmp-*``), which are never mistaken for data and are cleaned up by the
next attempt. Downloading again is a no-op unless ``force=True``.

When no digest is known (see :mod:`recforge.data.catalog`) the digest computed on the first
download is recorded in the manifest; a forced re-download that yields a different digest is
reported (logged as a warning, and recorded), since some archives (ml-latest) change upstream.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from .._version import __version__
from . import catalog

log = logging.getLogger(__name__)

__all__ = ["DownloadError", "cache_dir", "cached", "cached_path", "download", "MARKER"]

#: Name of the manifest file written inside a complete data-set folder.
MARKER = ".recforge-complete.json"
_CHUNK = 1 << 20
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class DownloadError(RuntimeError):
    """A download could not be completed (network, size, checksum, archive)."""


def cache_dir(override=None) -> Path:
    """The data cache: ``override``, else ``$RECFORGE_DATA``, else the user cache directory."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("RECFORGE_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_cache_dir("recforge")) / "datasets"


_cache_root = cache_dir  # ``download`` has a parameter of the same name


def cached_path(name: str, cache: str | os.PathLike | None = None) -> Path | None:
    """The folder of ``name`` when it was downloaded completely, else ``None``."""
    d = cache_dir(cache) / name
    return d if (d / MARKER).is_file() else None


def cached(cache: str | os.PathLike | None = None) -> dict[str, dict]:
    """Complete data sets in the cache: ``{name: manifest}``."""
    root = cache_dir(cache)
    out: dict[str, dict] = {}
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        m = d / MARKER
        if d.is_dir() and not d.name.startswith(".") and m.is_file():
            try:
                out[d.name] = json.loads(m.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                out[d.name] = {"manifest": "unreadable"}
    return out


def _fetch(url: str, dest: Path, timeout: float) -> tuple[int, str]:
    """Stream ``url`` into ``dest``; return (bytes, sha256). Raises DownloadError."""
    h = hashlib.sha256()
    n = 0
    req = urllib.request.Request(url, headers={"User-Agent": f"recforge/{__version__}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except http.client.IncompleteRead as e:
                    n += len(e.partial)
                    raise DownloadError(
                        f"incomplete download of {url}: the connection closed after {n} bytes"
                        + (f" of {expected}" if expected is not None else "")) from None
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                n += len(chunk)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DownloadError(f"cannot reach {url}: {e.reason}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {url} failed after {n} bytes: {e!r}") from None
    if expected is not None and n != expected:
        raise DownloadError(f"incomplete download of {url}: got {n} bytes of {expected}")
    if n == 0:
        raise DownloadError(f"download of {url} is empty")
    return n, h.hexdigest()


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        p = PurePosixPath(name.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts:
            raise DownloadError(f"archive {archive.name} holds an unsafe path {name!r}")


def _extract(archive: Path, url: str, dest: Path) -> None:
    """Extract a zip or tar archive (or copy a plain file) into ``dest``."""
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as z:
                _safe_members(z.namelist(), archive)
                bad = z.testzip()
                if bad is not None:
                    raise DownloadError(f"archive member {bad!r} is corrupt (CRC mismatch)")
                z.extractall(dest)
        except zipfile.BadZipFile as e:
            raise DownloadError(f"corrupt zip archive from {url}: {e}") from None
    elif tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive) as t:
                _safe_members(t.getnames(), archive)
                if hasattr(tarfile, "data_filter"):
                    t.extractall(dest, filter="data")
                else:  # pragma: no cover - Python < 3.10.12
                    t.extractall(dest)
        except tarfile.TarError as e:
            raise DownloadError(f"corrupt tar archive from {url}: {e}") from None
    else:
        fname = PurePosixPath(url.split("?", 1)[0]).name or "data"
        if fname.lower().endswith(_ARCHIVE_SUFFIXES):
            raise DownloadError(f"{fname} from {url} is not a valid archive (corrupt or not "
                                "what the server was expected to send)")
        shutil.copyfile(archive, dest / fname)
    # an archive with one top-level folder (ml-100k.zip -> ml-100k/) is flattened
    entries = [c for c in dest.iterdir() if not c.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        tmp = dest / (".flatten-" + inner.name)
        inner.rename(tmp)
        for c in tmp.iterdir():
            c.rename(dest / c.name)
        tmp.rmdir()


def _clean_stale(root: Path, name: str, max_age_s: float = 6 * 3600) -> None:
    """Remove temporary leftovers of earlier interrupted attempts for ``name``."""
    now = time.time()
    for c in root.glob(f".tmp-{name}-*"):
        try:
            if now - c.stat().st_mtime > max_age_s:
                shutil.rmtree(c) if c.is_dir() else c.unlink()
        except OSError:
            pass


def download(name: str, *, cache_dir: str | os.PathLike | None = None, url: str | None = None,
             sha256: str | None = None, force: bool = False, timeout: float = 60.0) -> Path:
    """Download data set ``name`` into the cache and return its folder.

    Parameters
    ----------
    name : str
        A catalog name (:func:`recforge.data.catalog.names`), or any folder name when ``url``
        is given.
    cache_dir : str or Path, optional
        Overrides ``$RECFORGE_DATA`` / the user cache directory.
    url : str, optional
        Overrides the catalog URL (a mirror, or a local server in tests).
    sha256 : str, optional
        Expected digest of the archive; overrides the catalog's. A mismatch raises
        :class:`DownloadError` and leaves nothing behind.
    force : bool
        Download again even when the data set is cached.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    Path
        The folder holding the extracted files.

    Raises
    ------
    DownloadError
        Unknown name, manual-download data set, network failure, short transfer, checksum
        mismatch or corrupt archive.
    """
    info = catalog.get(name)
    if url is None:
        if info is None:
            raise DownloadError(f"unknown data set {name!r}; known: {', '.join(catalog.names())}")
        if info.manual:
            raise DownloadError(f"{name} cannot be downloaded automatically (terms or login "
                                f"required): download it from {info.homepage} and pass its "
                                "directory instead")
        url = info.url
    if sha256 is None and info is not None and info.sha256 and url == info.url:
        sha256 = info.sha256
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DownloadError(f"invalid data set name {name!r}")
    root = _cache_root(cache_dir)
    target = root / name
    marker = target / MARKER
    previous: dict = {}
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        if not force:
            log.info("%s is already in the cache at %s", name, target)
            return target
    elif target.exists() and not force:
        # not ours (no manifest): never overwrite what someone put there
        raise DownloadError(f"{target} exists but was not downloaded by recforge; remove it, "
                            "pass force=True to replace it, or read it as a local directory")
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root, name)
    log.info("downloading %s from %s", name, url)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{name}-", suffix=".part", dir=root)
    os.close(fd)
    archive = Path(tmp_name)
    staging = None
    try:
        size, digest = _fetch(url, archive, timeout)
        if sha256 is not None and digest.lower() != sha256.lower():
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, "
                                f"got {digest}")
        if previous.get("sha256") and previous["sha256"] != digest:
            log.warning("%s changed upstream since the last download (sha256 %s, now %s)", name,
                        previous["sha256"], digest)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        _extract(archive, url, staging)
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        manifest = {"name": name, "url": url, "bytes": size, "sha256": digest,
                    "sha256_verified": sha256 is not None, "downloaded_at": time.time(),
                    "recforge": __version__, "files": files}
        (staging / MARKER).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if target.exists():
            # an old complete copy (force=True) or foreign leftovers: move aside, then replace
            old = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-old-", dir=root))
            os.replace(target, old / name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
        staging = None
    finally:
        archive.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: %d bytes, sha256 %s, extracted to %s", name, size, digest, target)
    return target

