"""Read-only access to the files of a data set, wherever they are stored: a folder, a zip, a tar or an LMDB.

The four storage formats the seed codebase reads (Carver, ``datasets/file_readers/``: ``dir``, ``zip``,
``tar``, ``lmdb``), behind one small interface, :class:`Archive`::

    archive = open_archive("img_align_celeba.zip")     # or a folder, a .tar(.gz), an LMDB directory
    names = archive.names()                            # sorted member names, posix, no folders
    data = archive.read(names[0])                      # the member's bytes

What differs from Carver, on purpose:

* Folders are listed recursively (EG3D's ``dataset_tool.py`` does the same with ``rglob``; Carver's
  ``DirectoryReader`` lists one level), so ``img_align_celeba/`` or a tree of class folders reads as is.
* Tars are read in place: an uncompressed tar is indexed once (member offsets) and read by seeking;
  a compressed one (``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) is decompressed once into the
  gan3d cache, since a compressed stream cannot be read at random. Carver extracts every tar next
  to itself and deletes the folder on close.
* Hidden files and macOS metadata (``.DS_Store``, ``__MACOSX/``, ``._*``) are not members.
* File handles are opened lazily per process: a ``DataLoader`` worker never shares a zip, tar or
  LMDB handle with its parent (their file offsets and LMDB transactions would collide).

Every defect raises :class:`DatasetError` naming the path (and member) and what to do.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = ["Archive", "DatasetError", "FolderArchive", "ZipArchive", "TarArchive", "LmdbArchive", "open_archive",
           "archive_kind"]

logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A data set is missing, malformed or holds a file that cannot be read."""


def _hidden(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") for p in parts) or (parts and parts[0] == "__MACOSX")


class Archive:
    """The files of one data set. Subclasses implement :meth:`_list` and :meth:`_read`.

    Attributes:
        path: the folder or file given.
        kind: ``'folder'``, ``'zip'``, ``'tar'`` or ``'lmdb'``.
    """

    kind = "archive"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._names: list[str] | None = None
        self._name_set: set[str] | None = None

    # ---- what subclasses provide
    def _list(self) -> list[str]:
        raise NotImplementedError

    def _read(self, name: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Release this process's handles (they are reopened on the next read)."""

    # ---- shared
    def names(self) -> list[str]:
        """Sorted posix names of the member files (no folders, no hidden or macOS metadata files)."""
        if self._names is None:
            self._names = sorted(n for n in self._list() if not _hidden(n))
            self._name_set = set(self._names)
        return self._names

    def exists(self, name: str) -> bool:
        self.names()
        assert self._name_set is not None
        return name in self._name_set

    def where(self, name: str) -> str:
        """How to point a user at member ``name``."""
        return f"{self.path}: entry '{name}'" if self.kind != "folder" else str(self.path / name)

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``; a missing or unreadable member raises :class:`DatasetError`."""
        try:
            return self._read(name)
        except (KeyError, FileNotFoundError) as error:
            raise DatasetError(f"{self.where(name)} does not exist") from error
        except DatasetError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, tarfile.TarError) as error:
            raise DatasetError(
                f"{self.where(name)} cannot be read ({error}); the file is truncated or corrupt: re-create the data set"
            ) from error

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for key in self._handle_keys():
            state[key] = None
        return state

    def _handle_keys(self) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class FolderArchive(Archive):
    """A folder, listed recursively."""

    kind = "folder"

    def _list(self) -> list[str]:
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]

    def _read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()


class _PerProcessHandle:
    """A handle opened on first use in each process (forked workers must not share one)."""

    def __init__(self) -> None:
        self.handle = None
        self.pid: int | None = None

    def get(self, opener):
        if self.handle is None or self.pid != os.getpid():
            self.handle = opener()
            self.pid = os.getpid()
        return self.handle

    def close(self) -> None:
        if self.handle is not None and self.pid == os.getpid():
            self.handle.close()
        self.handle, self.pid = None, None


class ZipArchive(Archive):
    """A zip file (EG3D's ``dataset_tool.py`` output, or a raw download such as ``img_align_celeba.zip``)."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._zip = _PerProcessHandle()

    def _handle_keys(self) -> tuple[str, ...]:
        return ("_zip",)

    def _open(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as error:
            raise DatasetError(
                f"{self.path} is not a readable zip ({error}); it may be truncated or corrupt: "
                "re-create or re-download it"
            ) from error

    def _handle(self) -> zipfile.ZipFile:
        if self._zip is None:  # unpickled in a worker
            self._zip = _PerProcessHandle()
        return self._zip.get(self._open)

    def _list(self) -> list[str]:
        return [info.filename for info in self._handle().infolist() if not info.is_dir()]

    def _read(self, name: str) -> bytes:
        return self._handle().read(name)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


#: magic bytes of the compressed tar streams we decompress once into the cache.
_COMPRESSED = ((b"\x1f\x8b", gzip.open, "gzip"), (b"BZh", bz2.open, "bzip2"),
               (b"\xfd7zXZ\x00", lzma.open, "xz"))


class TarArchive(Archive):
    """A tar file: members indexed once by offset and read by seeking into the (uncompressed) tar.

    A compressed tar is first decompressed into ``cache_dir`` (default: the gan3d cache), keyed by
    its path, size and modification time, so the copy is made once.
    """

    kind = "tar"

    def __init__(self, path: Path, cache_dir: Path | None = None) -> None:
        super().__init__(path)
        self._file = _PerProcessHandle()
        self._cache_dir = cache_dir
        self._plain = self._uncompressed()
        self._index = self._build_index()

    def _handle_keys(self) -> tuple[str, ...]:
        return ("_file",)

    def _uncompressed(self) -> Path:
        with open(self.path, "rb") as f:
            head = f.read(6)
        for magic, opener, what in _COMPRESSED:
            if head.startswith(magic):
                return self._decompress(opener, what)
        return self.path

    def _decompress(self, opener, what: str) -> Path:
        from .synthetic_dataset import default_cache_dir

        stat = self.path.stat()
        key = hashlib.sha256(f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        cache = (self._cache_dir or default_cache_dir() / "tar") / f"{self.path.name.split('.')[0]}-{key}.tar"
        if cache.is_file():
            return cache
        cache.parent.mkdir(parents=True, exist_ok=True)
        logger.info("decompressing %s (%s) once into %s for random access", self.path, what, cache)
        partial = cache.with_name(cache.name + f".{os.getpid()}.partial")
        try:
            with opener(self.path, "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        except (OSError, EOFError, lzma.LZMAError) as error:
            partial.unlink(missing_ok=True)
            raise DatasetError(f"{self.path} is not a readable {what}-compressed tar ({error}); re-create or "
                               "re-download it") from error
        os.replace(partial, cache)
        return cache

    def _build_index(self) -> dict[str, tuple[int, int]]:
        index: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(self._plain, "r:") as tar:
                for member in tar:
                    if member.isfile():
                        name = member.name[2:] if member.name.startswith("./") else member.name
                        index[name] = (member.offset_data, member.size)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DatasetError(f"{self.path} is not a readable tar ({error}); it may be truncated or corrupt: "
                               "re-create or re-download it") from error
        return index

    def _list(self) -> list[str]:
        return list(self._index)

    def _read(self, name: str) -> bytes:
        offset, size = self._index[name]
        if self._file is None:
            self._file = _PerProcessHandle()
        f: BinaryIO = self._file.get(lambda: open(self._plain, "rb"))
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise DatasetError(f"{self.where(name)} is cut short ({len(data)} of {size} bytes); the tar is truncated")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


#: open LMDB environments by path, with the process that opened them: py-lmdb refuses to open one
#: environment twice in a process, so every archive of a path shares one (Carver's
#: ``LmdbReader.reader_cache``); a forked worker closes its inherited copy and opens its own.
_LMDB_ENVS: dict[str, tuple[int, object]] = {}


class LmdbArchive(Archive):
    """An LMDB database (Carver's ``LmdbReader``, GIRAFFE's LSUN reader, StyleSDF's ``prepare_data.py``).

    Members are the keys, decoded as UTF-8 (other bytes as ``repr``); values are the stored bytes.
    The database is opened read-only, without locking or read-ahead, as the seed does, once per
    process (read-only memory maps are shared by every archive of that path and live as long as it).
    """

    kind = "lmdb"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            import lmdb  # noqa: F401
        except ImportError as error:  # pragma: no cover - lmdb is a dependency of gan3d-core
            raise DatasetError(f"{path} is an LMDB database; reading it needs the 'lmdb' package "
                               "(pip install lmdb)") from error
        self._keys: dict[str, bytes] = {}
        with self._handle().begin(write=False) as txn:
            for key in txn.cursor().iternext(keys=True, values=False):
                try:
                    name = key.decode("utf-8")
                except UnicodeDecodeError:
                    name = repr(key)
                self._keys[name] = bytes(key)

    def _handle(self):
        import lmdb

        key = str(self.path.resolve())
        pid, env = _LMDB_ENVS.get(key, (None, None))
        if env is not None and pid == os.getpid():
            return env
        if env is not None:  # inherited through fork: unmap this process's copy (the parent keeps its own)
            env.close()
        try:
            env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False, meminit=False,
                            subdir=self.path.is_dir(), max_readers=126)
        except lmdb.Error as error:
            raise DatasetError(f"{self.path} is not a readable LMDB database ({error})") from error
        _LMDB_ENVS[key] = (os.getpid(), env)
        return env

    def _list(self) -> list[str]:
        return list(self._keys)

    def _read(self, name: str) -> bytes:
        key = self._keys[name]
        with self._handle().begin(write=False) as txn:
            value = txn.get(key)
        if value is None:
            raise KeyError(name)
        return bytes(value)

    def close(self) -> None:
        pid, env = _LMDB_ENVS.pop(str(self.path.resolve()), (None, None))
        if env is not None and pid == os.getpid():
            env.close()


def archive_kind(path: Path) -> str:
    """``'folder'``, ``'zip'``, ``'tar'`` or ``'lmdb'`` for an existing ``path``; raises on anything else."""
    if path.is_dir():
        return "lmdb" if (path / "data.mdb").is_file() else "folder"
    if not path.is_file():
        raise DatasetError(f"data set path {path} does not exist; give a folder, a .zip, a .tar or an LMDB database")
    if path.suffix == ".mdb":
        return "lmdb"
    if zipfile.is_zipfile(path):
        return "zip"
    with open(path, "rb") as f:
        head = f.read(6)
    if any(head.startswith(magic) for magic, _, _ in _COMPRESSED) or tarfile.is_tarfile(path):
        return "tar"
    raise DatasetError(
        f"{path} is neither a folder nor a readable zip, tar or LMDB database (it may be truncated or corrupt); "
        "give a folder of images, a .zip, a .tar or an LMDB directory"
    )


def open_archive(path: str | Path, *, cache_dir: Path | None = None) -> Archive:
    """The :class:`Archive` of ``path``: a folder, a zip, a tar (optionally compressed) or an LMDB database.

    Example:
        >>> archive = open_archive("data/celeba/img_align_celeba")     # doctest: +SKIP
        >>> archive.kind, len(archive.names())                          # doctest: +SKIP
        ('folder', 202599)
    """
    path = Path(path)
    kind = archive_kind(path)
    if kind == "folder":
        return FolderArchive(path)
    if kind == "zip":
        return ZipArchive(path)
    if kind == "tar":
        return TarArchive(path, cache_dir=cache_dir)
    return LmdbArchive(path)
