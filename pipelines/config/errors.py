"""Bad parameters as one line: ``ConfigError`` and the description of pydantic's validation errors."""

from __future__ import annotations

import os

from pydantic import ValidationError

from eae.errors import EAEError
from pipelines.config.schema import ENV_NESTED_DELIMITER, ENV_PREFIX

MAX_SHOWN_VALUE = 80  # characters of a refused value echoed in its error line


class ConfigError(EAEError):
    """Bad parameters: reported on one line, exit code 2."""


def shown(value: object) -> str:
    """``repr(value)``, cut to MAX_SHOWN_VALUE characters: an error line never echoes a 100 kB value whole."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_VALUE:
        return text
    return f"{text[:MAX_SHOWN_VALUE]}... ({len(text):,} characters)"


def describe(error: dict) -> str:
    """One of pydantic's errors as a phrase naming the dotted key (and the EAE_ variable it came from)."""
    if not error["loc"]:  # a check across several keys (model_validator): the message names them
        return error["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in error["loc"])
    env = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(p) for p in error["loc"]).upper()
    origin = f" [from environment variable {env}]" if env in os.environ else ""
    if error["type"] == "extra_forbidden":
        return f"unknown parameter '{key}'{origin}"
    message = error["msg"].removeprefix("Value error, ")
    if len(message) > 2 * MAX_SHOWN_VALUE:
        message = message[: 2 * MAX_SHOWN_VALUE] + "..."
    return f"invalid parameter '{key}': {message} (got {shown(error.get('input'))}){origin}"


def config_error(where: str, exc: ValidationError) -> ConfigError:
    """The one-line error for every problem pydantic found in the parameters of ``where``."""
    return ConfigError(f"{where}: " + "; ".join(describe(e) for e in exc.errors()))
