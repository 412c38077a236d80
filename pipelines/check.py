"""The check stage: the first stage of dvc.yaml, which DVC reruns whenever any key of params.yaml changes
(its ``params`` are the whole file). It validates the parameters (``pipelines.config``: a misspelt or
unknown key, a bad value, a missing ``data.root``) and fails the run with one line naming the key before
any other stage runs: ``dvc exp run -S +entropy_weigth=0.5`` stops here instead of recording an
experiment that changed nothing.

Its output says only that the parameters were valid, in words that never change: the fetch stage
depends on it (so every stage comes after this one), and a valid change of parameters reruns only the
stages that use them.
"""

from __future__ import annotations

from eae.io import write_bytes
from pipelines._stage import log, run
from pipelines.config import PARAMS_FILE, load_params

CHECKED = "data/params_valid.txt"
TEXT = b"params.yaml: parameters are valid (the check stage, python -m pipelines.check)\n"


def main() -> None:
    load_params(PARAMS_FILE)
    write_bytes(CHECKED, TEXT)
    log.info("%s: parameters are valid", PARAMS_FILE)


if __name__ == "__main__":
    run(main)
