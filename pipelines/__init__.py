"""DVC stage scripts: thin main()s that read params.yaml, call the eae library and write outputs.

dvc.yaml runs each stage as ``python -m pipelines.<stage>`` with whatever ``python`` comes first
on PATH (DVC runs commands through the shell). When that interpreter is not the project's
environment (``make install`` builds ``.venv``; ``source .venv/bin/activate`` puts it first), a
stage launched with ``-m`` stops here with one line and exit code 2, instead of running with
other library versions or failing later on a missing module.

**The last good outputs.** ``dvc repro`` deletes a stage's cached outputs before it runs the stage;
killed while the stage runs, it leaves them deleted, and only DVC's cache can bring them back (which
lacks them when they were written by running the stage directly, after ``dvc gc``, or in a clone
that pulled nothing). So every stage that succeeds hard-links its cached outputs under
``.dvc/tmp/eae/last_good/`` (no data copied: they are the same files; replaced only by the next
success), and a stage started with ``-m`` first puts back, from there, each of its outputs that is
missing: while it runs, the workspace holds the last good version, which the stage replaces
atomically when it succeeds. A kill at any moment leaves either the last good outputs in the
workspace or, in the moment between DVC's deletion and the stage's start, under ``last_good/``,
from where the next run of the stage puts them back.
"""

import os
import sys

LAST_GOOD = ".dvc/tmp/eae/last_good"
#: outputs put back by this process when it started (the stage logs them once logging is set up)
restored_outputs: list[str] = []


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


def stage_module() -> str | None:
    """The module this interpreter was started to run with ``-m`` (None otherwise)."""
    argv = list(getattr(sys, "orig_argv", []))
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None


def deleted_outputs(module: str, repo: str = ".") -> tuple[str | None, list[str]]:
    """(stage, outputs) of the dvc.yaml stage whose command runs ``module``: the outputs DVC deletes before
    the stage runs (cached ones; ``persist: true`` outputs stay). (None, []) when there is none."""
    from pipelines import dvcfile

    try:
        found = dvcfile.stage_running(module, repo)
    except dvcfile.READ_ERRORS:
        return None, []
    if found is None:
        return None, []
    name, outs = found
    return name, [out.path for out in outs if out.deleted_before_run]


def _copy_links(src: str, dst: str) -> None:
    """``dst`` = the file or folder ``src``, its files hard-linked (copied where links are impossible)."""
    import shutil

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if os.path.isdir(src):
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    else:
        link(src, dst)


def _replace_with_links(src: str, dst: str) -> None:
    """Make ``dst`` (a file or folder) a linked copy of ``src``, atomically (a temporary beside ``dst``
    renamed over it; a folder's old version is moved aside first)."""
    import shutil

    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = os.path.join(os.path.dirname(dst) or ".", f".{os.path.basename(dst)}.{os.getpid()}.tmp")
    aside = tmp + ".old"
    for leftover in (tmp, aside):  # of a run killed here before
        if os.path.isdir(leftover) and not os.path.islink(leftover):
            shutil.rmtree(leftover)
        elif os.path.lexists(leftover):
            os.unlink(leftover)
    _copy_links(src, tmp)
    if os.path.isdir(dst) and not os.path.islink(dst):
        os.replace(dst, aside)
    os.replace(tmp, dst)
    shutil.rmtree(aside, ignore_errors=True)


def restore_last_good(module: str, repo: str = ".") -> list[str]:
    """Put back, from ``.dvc/tmp/eae/last_good``, every output of ``module``'s stage that is missing
    (DVC deleted it to run the stage); returns them."""
    _, outs = deleted_outputs(module, repo)
    restored = []
    for out in outs:
        saved, dst = os.path.join(repo, LAST_GOOD, out), os.path.join(repo, out)
        if os.path.lexists(saved) and not os.path.lexists(dst):
            _replace_with_links(saved, dst)
            restored.append(out)
    return restored


def keep_last_good(module: str, repo: str = ".") -> list[str]:
    """After ``module``'s stage succeeded: link its outputs under ``.dvc/tmp/eae/last_good`` (replacing
    the previous ones); returns them."""
    _, outs = deleted_outputs(module, repo)
    kept = []
    for out in outs:
        src = os.path.join(repo, out)
        if os.path.lexists(src):
            _replace_with_links(src, os.path.join(repo, LAST_GOOD, out))
            kept.append(out)
    return kept


if sys.argv[:1] == ["-m"]:  # `python -m pipelines.<stage>` (argv[0] is "-m" while the package imports)
    _require_project_environment()
    _module = stage_module()
    # torchrun's workers are the stage's own children: the stage's process did this already
    if _module and "TORCHELASTIC_RUN_ID" not in os.environ:
        try:
            restored_outputs.extend(restore_last_good(_module))
        except OSError as _exc:  # never a reason not to run the stage
            print(f"warning: could not put back the last good outputs: {_exc}", file=sys.stderr)
