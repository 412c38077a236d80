"""Stage prepare: raw source -> data/prepared/ (uint8 .npy shards + manifest.json)."""

from __future__ import annotations

from eae.data import load_source, write_prepared
from eae.io import atomic_dir
from pipelines._stage import PREPARED, log, run
from pipelines.config import load_params


def main() -> None:
    p = load_params()
    log.info("loading source %r", p.data.source)
    splits = load_source(p.data.source, root=p.data.root, image_size=p.data.image_size,
                         test_fraction=p.data.test_fraction, seed=p.seed)
    with atomic_dir(PREPARED) as tmp:
        manifest = write_prepared(tmp, splits, p.data.source, p.data.shard_size)
    counts = {k: v["count"] for k, v in manifest["splits"].items()}
    log.info("wrote %s: image_shape %s, %s, %s", PREPARED, manifest["image_shape"], counts, manifest["content_hash"])


if __name__ == "__main__":
    run(main)
