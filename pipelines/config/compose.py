"""Composing configurations: params.yaml = the defaults with an override file's keys set
(``python -m pipelines.config --compose configs/celeba.yaml``), keeping params.yaml's layout and
comments (ruamel.yaml's round trip); overridden keys carry the override file's comments."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from eae.io import atomic_path
from pipelines.config.errors import ConfigError, config_error
from pipelines.config.loading import PARAMS_FILE, read_params_file
from pipelines.config.schema import Params, params_of_file

COMPOSED = "# Composed by pipelines.config from "


def _defaults() -> dict:
    """Every parameter's default (what the committed params.yaml holds; EAE_ variables play no part)."""
    return Params.model_construct().model_dump(mode="json")


def _deep_update(base: dict, changes: dict, where: str, prefix: str = "") -> dict:
    """``base`` with ``changes`` applied key by key; ConfigError for a key ``base`` does not have."""
    out = dict(base)
    for key, value in changes.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{where}: unknown parameter '{dotted}'")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{dotted}' is a section; give its keys")
            out[key] = _deep_update(base[key], value, where, dotted + ".")
        else:
            out[key] = value
    return out


def _eol_comment(node, key):
    item = node.ca.items.get(key) if hasattr(node, "ca") else None
    return item[2] if item and len(item) > 2 else None


def _set_values(node, values: dict, changes: dict, label: str, stale: dict) -> None:
    """Set ``values`` into the round-trip mapping ``node`` (params.yaml's layout and comments kept). A key
    in ``changes`` gets the override file's end-of-line comment, or ``label``, instead of the default's;
    a key in ``stale`` (set by an earlier composition, now back at its default) loses its comment."""
    for key, value in values.items():
        if isinstance(value, dict):
            _set_values(node[key], value, changes.get(key) or {}, label, stale.get(key) or {})
            continue
        changed = key in changes
        if isinstance(value, list):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        old = _eol_comment(node, key)
        if node.get(key) != value or changed:
            node[key] = value
        if node.fa.flow_style() or not (changed or key in stale):  # no comment can go inside {...}
            continue
        rest = old.value.split("\n", 1)[1] if old is not None and "\n" in old.value else ""
        # the blank lines after the old comment stay (they separate sections); its continuation lines go
        blank = max(0, len(rest) - len(rest.rstrip("\n")) - (1 if rest.strip() else 0))
        new = _eol_comment(changes, key)
        if changed:
            text = new.value.split("\n", 1)[0] if new is not None else f"# {label}"
            column = old.column if old is not None else new.column if new is not None else 24
            token = CommentToken(text + "\n" + "\n" * blank, CommentMark(column), None)
        else:
            token = CommentToken("\n" * (blank + 1), CommentMark(0), None) if blank else None
        node.ca.items.setdefault(key, [None, None, None, None])[2] = token


def _layout_text(params: Path) -> tuple[str, dict]:
    """The text whose layout and comments a composition keeps, and the keys an earlier composition set
    there: params.yaml itself, or, when it is composed, the committed one (``git show HEAD:``) if that is
    not; else the composed file, whose previous override's keys then lose their comments."""
    text = params.read_text()
    if not text.startswith(COMPOSED):
        return text, {}
    head = subprocess.run(["git", "show", f"HEAD:./{params.name}"], cwd=params.parent, capture_output=True, text=True)
    if head.returncode == 0 and head.stdout.strip() and not head.stdout.startswith(COMPOSED):
        return head.stdout, {}
    previous = Path(text[len(COMPOSED) :].split(" ", 1)[0].rstrip(":"))
    try:
        return text, read_params_file(previous)
    except ConfigError:
        return text, {}


def compose_params(override: str | Path, params: str | Path = PARAMS_FILE) -> Params:
    """Write ``params`` = the defaults (``Params()``, which params.yaml holds as committed) with the keys of
    ``override`` (e.g. configs/celeba.yaml, which lists only what differs) set, keeping params.yaml's
    layout and comments; overridden keys carry the override file's comments. Composing always starts
    from the defaults, so switching from one config to another leaves nothing of the first behind.
    ConfigError (one line) for an unknown or invalid key; params is replaced atomically."""
    override, params = Path(override), Path(params)
    read_params_file(override)  # one-line errors for a missing, empty or malformed file
    rt = YAML()
    rt.width = 4096  # never fold a long line
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    changes = rt.load(override.read_text())
    values = _deep_update(_defaults(), changes, str(override))
    try:
        valid = params_of_file(values)
    except ValidationError as exc:
        raise config_error(str(override), exc) from None
    read_params_file(params)
    text, stale = _layout_text(params)
    layout = rt.load(text)
    _set_values(layout, valid.model_dump(mode="json"), changes, override.as_posix(), stale)
    buf = io.StringIO()
    rt.dump(layout, buf)
    body = "".join(line for line in buf.getvalue().splitlines(keepends=True) if not line.startswith("# Composed "))
    header = (
        f"{COMPOSED}{override.as_posix()}: the defaults with its keys set (and its comments).\n"
        "# Composed files go back to the defaults with `git checkout params.yaml`.\n"
    )
    with atomic_path(params) as tmp:
        Path(tmp).write_text(header + body)
    return valid
