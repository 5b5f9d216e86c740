"""Where the feature store and the model artifacts live: a local directory or a URI.

Any filesystem ``pyarrow.fs`` knows works: ``s3://bucket/prefix``, ``gs://bucket/prefix``,
``file:///abs/path`` or a plain local path. Options for the filesystem go in the URI's
query, e.g. ``s3://bucket/features?endpoint_override=127.0.0.1:9000&scheme=http`` for an
S3-compatible server; credentials come from the provider's usual environment variables.

A ``Location`` is a value (picklable, printable): ``str(location)`` is a URI or path that
``Location(...)`` reads back, so it can be stored (a model's ``artifact_uri``) and sent to
a Ray worker on any node.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Location:
    """A directory or file under a root given as a local path or a filesystem URI."""

    root: str
    parts: tuple[str, ...] = ()

    def __truediv__(self, name: str) -> Location:
        return Location(self.root, (*self.parts, *name.split("/")))

    def __str__(self) -> str:
        if "://" not in self.root:
            return str(Path(self.root, *self.parts))
        base, sep, query = self.root.partition("?")
        return "/".join([base.rstrip("/"), *self.parts]) + sep + query

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else self.path.rsplit("/", 1)[-1]

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @cached_property
    def _resolved(self) -> tuple[pafs.FileSystem, str]:
        filesystem, root = _filesystem(self.root)
        return filesystem, "/".join([root.rstrip("/"), *self.parts])

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._resolved[0]

    @property
    def path(self) -> str:
        """The path within ``filesystem``."""
        return self._resolved[1]

    def is_file(self) -> bool:
        return bool(self._info().type == pafs.FileType.File)

    def is_dir(self) -> bool:
        return bool(self._info().type == pafs.FileType.Directory)

    def children(self) -> list[str]:
        """Names of the files and directories directly inside (none if it does not exist)."""
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        return sorted(info.base_name for info in self.filesystem.get_file_info(selector))

    def read_bytes(self) -> bytes:
        with self.filesystem.open_input_stream(self.path) as stream:
            return bytes(stream.read())

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """Write the file whole: a reader sees the old content or the new, never a part.

        Locally through a temporary file and a rename; object stores publish an object
        only when its upload completes.
        """
        if self.is_local:
            directory = Path(self.path).parent
            directory.mkdir(parents=True, exist_ok=True)
            handle, staging = tempfile.mkstemp(prefix=f".{self.name}-", dir=directory)
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(staging, self.path)
            finally:
                Path(staging).unlink(missing_ok=True)
            return
        with self.filesystem.open_output_stream(self.path) as stream:
            stream.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def read_parquet(self, filters: Sequence[tuple[str, str, Any]] | None = None) -> pa.Table:
        return pq.read_table(self.path, filesystem=self.filesystem, filters=filters)

    @contextlib.contextmanager
    def parquet_writer(self, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
        """A Parquet file written a table at a time, never whole in memory, and published
        as ``write_bytes`` publishes, once the block ends without an error (an object
        store's upload completes as its stream closes, error or not: what it published
        then is deleted)."""
        if not self.is_local:
            try:
                with (
                    self.filesystem.open_output_stream(self.path) as stream,
                    pq.ParquetWriter(stream, schema) as writer,
                ):
                    yield writer
            except BaseException:
                with contextlib.suppress(OSError):
                    self.filesystem.delete_file(self.path)
                raise
            return
        directory = Path(self.path).parent
        directory.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=f".{self.name}-", dir=directory)
        os.close(handle)
        try:
            with pq.ParquetWriter(staging, schema) as writer:
                yield writer
            os.replace(staging, self.path)
        finally:
            Path(staging).unlink(missing_ok=True)

    def write_parquet(self, table: pa.Table, row_group_size: int | None = None) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, row_group_size=row_group_size)
        self.write_bytes(buffer.getvalue())

    def create_dir_exclusive(self) -> bool:
        """Create this directory; False if it already exists.

        Exclusive on a local disk (``mkdir``). Object stores have no directories and no
        create-if-absent, so there it is check-then-create: two writers in the same
        instant can both succeed.
        """
        if self.is_local:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                Path(self.path).mkdir()
            except FileExistsError:
                return False
            return True
        if self.is_dir():
            return False
        (self / ".created").write_bytes(b"")
        return True

    def delete_dir(self) -> None:
        """Delete this directory and everything in it; nothing if it does not exist."""
        if self._info().type != pafs.FileType.NotFound:
            self.filesystem.delete_dir(self.path)

    def delete_file(self) -> None:
        if self.is_file():
            self.filesystem.delete_file(self.path)

    def _info(self) -> pafs.FileInfo:
        return self.filesystem.get_file_info(self.path)


@lru_cache(maxsize=32)
def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """One filesystem object per root and process (an S3 client is worth reusing)."""
    if "://" not in root:
        return pafs.LocalFileSystem(), str(Path(root).resolve())
    filesystem, path = pafs.FileSystem.from_uri(root)
    return filesystem, path
