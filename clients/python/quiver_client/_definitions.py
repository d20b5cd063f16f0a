"""Definitions for Plan and Apply: the YAML files of a local folder, read the way the
server and the CLI read a definitions folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Mapping, Union

from ._errors import InvalidArgument
from ._proto.quiver.v1 import registry_pb2

__all__ = ["Definitions", "read_documents"]

Definitions = Union[str, "os.PathLike[str]", Mapping[str, str]]
"""A definitions folder (every ``*.yaml``/``*.yml`` file in it and below it, sorted,
hidden entries skipped), or a mapping of document name to YAML text."""


def _yaml_files(folder: Path) -> List[Path]:
    found: List[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.extend(_yaml_files(entry))
        elif entry.suffix in (".yaml", ".yml"):
            found.append(entry)
    return found


def read_documents(definitions: Definitions) -> List[registry_pb2.YamlDocument]:
    """The YAML documents to send; a file's name is its path relative to the folder."""
    if isinstance(definitions, Mapping):
        return [registry_pb2.YamlDocument(name=str(n), content=str(c)) for n, c in definitions.items()]
    folder = Path(definitions)
    if not folder.is_dir():
        raise InvalidArgument(f"definitions folder {folder} does not exist or is not a folder")
    files = _yaml_files(folder)
    if not files:
        raise InvalidArgument(f"definitions folder {folder} holds no *.yaml files")
    return [
        registry_pb2.YamlDocument(name=f.relative_to(folder).as_posix(), content=f.read_text(encoding="utf-8"))
        for f in files
    ]
