"""Stage prepare: raw source -> data/prepared/ (uint8 .npy shards + manifest.json)."""

from __future__ import annotations

from eae.data.prepare import write_prepared
from eae.data.sources import load_source
from eae.io import atomic_dir
from pipelines._stage import FETCHED, PREPARED, log, run
from pipelines.config import load_params


def main() -> None:
    p = load_params()
    log.info("loading source %r", p.data.source)
    d = p.data
    splits = load_source(
        d.source,
        root=d.root,
        image_size=d.image_size,
        test_fraction=d.test_fraction,
        seed=d.split_seed,
        download=d.download,
        crop=d.crop,
        split_file=d.split_file,
        npm_dir=FETCHED,
    )
    with atomic_dir(PREPARED) as tmp:
        manifest = write_prepared(tmp, splits, d.source, d.shard_size, workers=d.workers, on_bad_image=d.on_bad_image)
    counts = {k: v["count"] for k, v in manifest["splits"].items()}
    log.info("wrote %s: image_shape %s, %s, %s", PREPARED, manifest["image_shape"], counts, manifest["content_hash"])


if __name__ == "__main__":
    run(main)
