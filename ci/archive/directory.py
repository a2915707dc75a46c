"""The default log store: a directory (in a cluster, a PersistentVolumeClaim's mount)."""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ci.archive.layout import check_name
from ci.archive.store import StoredObject, StoreError

# Files being written are hidden under this name until they are renamed into place.
_PARTIAL = ".partial-"


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        check_name(name)
        return self._root.joinpath(*name.split("/"))

    def put(self, name: str, data: BinaryIO) -> None:
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=_PARTIAL)
            try:
                with os.fdopen(descriptor, "wb") as out:
                    shutil.copyfileobj(data, out, length=1 << 20)
                os.replace(partial, path)  # atomic: readers see the old file or the new
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)
                raise
        except OSError as error:
            raise StoreError(f"log directory {self._root}: cannot write {name}: {error}") from error

    def open(self, name: str) -> BinaryIO | None:
        try:
            return self._path(name).open("rb")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"log directory {self._root}: cannot read {name}: {error}") from error

    def list(self, prefix: str) -> Iterator[StoredObject]:
        base = self._root.joinpath(*prefix.rstrip("/").split("/")) if prefix else self._root
        if not base.is_dir():
            return
        for directory, _folders, files in os.walk(base):
            for file in files:
                if file.startswith(_PARTIAL):
                    continue
                path = Path(directory, file)
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted while listing
                    continue
                yield StoredObject(
                    name=path.relative_to(self._root).as_posix(),
                    size=stat.st_size,
                    modified=datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC),
                )

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            path = self._path(name)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            # Empty folders go too, up to the root, so a pruned repository leaves nothing.
            parent = path.parent
            while parent != self._root:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
