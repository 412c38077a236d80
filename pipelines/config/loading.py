"""Reading parameters: params.yaml (one line for any problem), EAE_ variables, dotted overrides."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError
from ruamel.yaml import YAML, MappingNode, Node
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError

from eae.errors import EAEError
from eae.io import read_regular_bytes
from pipelines.config.errors import MAX_SHOWN_VALUE, ConfigError, config_error, shown
from pipelines.config.schema import ENV_NESTED_DELIMITER, ENV_PREFIX, Params

PARAMS_FILE = "params.yaml"
MAX_PARAMS_BYTES = 1_000_000  # a parameter file far larger than params.yaml is something else


def _yaml() -> YAML:
    """The YAML reader DVC reads params.yaml with (YAML 1.2, safe); it refuses a repeated key itself."""
    return YAML(typ="safe")


def _repeated_key(text: str, error: DuplicateKeyError) -> str:
    """The dotted key that ``error`` found repeated: the keys (and list indices) from the top of the
    document down to the mapping at the error's context mark, then the key at its problem mark."""
    node: Node = _yaml().compose(text)
    keys: list[str] = []
    while not (isinstance(node, MappingNode) and node.start_mark.index == error.context_mark.index):
        items = node.value if isinstance(node, MappingNode) else list(enumerate(node.value))
        inside = [(k, v) for k, v in items if v.start_mark.index <= error.context_mark.index < v.end_mark.index]
        if not inside:  # cannot happen for a mark ruamel reported; name what was found so far
            break
        key, node = inside[0]
        keys.append(str(getattr(key, "value", key)))
    if isinstance(node, MappingNode):
        keys += [k.value for k, _ in node.value if k.start_mark.index == error.problem_mark.index][:1]
    return ".".join(keys)


def read_params_file(path: str | Path) -> dict:
    """The parameter mapping of a YAML file; ConfigError (one line) when it is missing, unreadable,
    not UTF-8, not YAML, empty, not a mapping or repeats a key."""
    path = Path(path)
    try:  # a FIFO or a device would block or never end: only a regular file of a sensible size is read
        data = read_regular_bytes(path, "parameter file", MAX_PARAMS_BYTES)
    except EAEError as exc:
        raise ConfigError(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = _yaml().load(text)
    except DuplicateKeyError as exc:
        raise ConfigError(
            f"{path}: duplicate key '{_repeated_key(text, exc)}' (line {exc.problem_mark.line + 1}); "
            "YAML would keep only the last value"
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if raw is None:
        raise ConfigError(f"{path} is empty: it must list the parameters (see the repository's params.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters, got {type(raw).__name__}")
    return raw


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse ``EAE_`` variables that name no parameter: pydantic-settings would ignore them, so a
    misspelt section (``EAE_TRIAN__EPOCHS=1``) would silently change nothing. A variable for a list or
    a whole section must hold JSON (pydantic-settings would fail with a traceback naming no variable).
    The fields and their JSON decoding are pydantic-settings' own (``EnvSettingsSource``)."""
    environ = os.environ if environ is None else environ
    source = EnvSettingsSource(Params)
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
        field, depth = Params.model_fields.get(parts[0]), 1
        while field is not None and depth < len(parts):  # down the sections as pydantic-settings goes
            field, depth = source.next_field(field, parts[depth], case_sensitive=False), depth + 1
        if field is None:
            raise ConfigError(
                f"environment variable {var}: unknown parameter '{'.'.join(parts[:depth])}' "
                f"(overrides are EAE_<KEY> or EAE_<SECTION>__<KEY>, e.g. EAE_TRAIN__EPOCHS)"
            )
        if not source.field_is_complex(field):
            continue
        try:
            source.decode_complex_value(parts[-1], field, environ[var])
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):  # a whole section: show one of its keys
                first = next(iter(type(default).model_fields))
                default = {first: getattr(default, first)}
            example = json.dumps(default, default=lambda v: v.model_dump() if isinstance(v, BaseModel) else str(v))
            raise ConfigError(
                f"environment variable {var}: not valid JSON ({reason}, at character "
                f"{getattr(exc, 'pos', 0)} of {shown(environ[var])}); '{'.'.join(parts)}' takes JSON such as "
                f"{example}"
            ) from None


def _set_dotted(raw: dict, key: str, value: object) -> None:
    *sections, leaf = key.split(".")
    node = raw
    for section in sections:
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key}: '{section}' is not a section")
        node = child
    node[leaf] = value


def load_params(path: str | Path = PARAMS_FILE, overrides: dict[str, object] | None = None) -> Params:
    """Read and validate params.yaml (+ EAE_ environment overrides, + ``overrides`` as dotted
    keys, e.g. the flow's ``--set train.epochs=3``); ConfigError (one line) on any problem."""
    path = Path(path)
    raw = read_params_file(path)
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    check_environment()
    where = f"{path} with {', '.join(f'{k}={shown(v)}' for k, v in overrides.items())}" if overrides else str(path)
    try:
        params = Params(**raw)
    except ValidationError as exc:
        raise config_error(where, exc) from None
    except SettingsError as exc:  # an environment value pydantic-settings cannot parse (check_environment names most)
        raise ConfigError(f"{where}: {' '.join(str(exc).split())[: 2 * MAX_SHOWN_VALUE]}") from None
    check_folders(params, project_root(path), where)
    return params


def project_root(path: Path) -> Path:
    """The repository a parameter file belongs to, where the stages run: the nearest folder above it with a
    dvc.yaml (``configs/x.yaml`` -> the repository), else the file's own folder."""
    folder = Path(path).resolve().parent
    return next((d for d in (folder, *folder.parents) if (d / "dvc.yaml").is_file()), folder)


def check_folders(params: Params, repo: Path, where: str) -> None:
    """The folders the parameters name must exist (relative to ``repo``, where the stages run):
    ``data.root`` of the folder source, which nothing downloads."""
    root = params.data.root
    if params.data.source == "folder" and not (repo / root).is_dir():
        raise ConfigError(
            f"{where}: invalid parameter 'data.root': {shown(root)} is not a folder (data.source folder "
            "reads its images there; layouts: data/raw/README.md)"
        )
