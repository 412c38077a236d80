"""DVC stage scripts: thin main()s that read params.yaml, call the eae library and write outputs.

dvc.yaml runs each stage as ``python -m pipelines.<stage>`` with whatever ``python`` comes first
on PATH (DVC runs commands through the shell). When that interpreter is not the project's
environment (``make install`` builds ``.venv``; ``source .venv/bin/activate`` puts it first), a
stage launched with ``-m`` stops here with one line and exit code 2, instead of running with
other library versions or failing later on a missing module. It loses nothing: every output in
dvc.yaml is ``persist: true``, so DVC did not delete the stage's outputs before starting it.
"""

import sys


def _require_project_environment() -> None:
    import os
    from importlib.metadata import distributions

    # Look in the interpreter's own paths only: the repository root (the working directory, first
    # on sys.path under -m) holds eae.egg-info after `pip install -e .`, whatever the interpreter.
    here = {"", os.getcwd()}
    installed = [p for p in sys.path if p not in here and os.path.abspath(p) != os.getcwd()]
    if not any(True for _ in distributions(name="eae", path=installed)):
        print(
            f"error: {sys.executable} is not this project's environment (the eae package is not installed "
            "in it): run `source .venv/bin/activate` first (`make install` builds .venv), or "
            "`pip install -e .` into the environment you use",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


if sys.argv[:1] == ["-m"]:  # `python -m pipelines.<stage>` (argv[0] is "-m" while the package imports)
    _require_project_environment()
