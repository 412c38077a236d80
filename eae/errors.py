"""User-facing errors: a stage prints their message on one line, no traceback.

The library says what is wrong, never which pipeline step or command makes a file: an input that another
step produces is refused with ``MissingArtifact`` (absent) or ``StaleArtifact`` (present but unusable, to be
made again), whose ``artifact`` names it (one of ``ARTIFACTS``). The program running the library (a
stage of the pipeline) maps the class and the artifact to the hint its user needs.
"""

#: What an artifact error may name: the prepared data, npm's package tarball of a source, the trained
#: checkpoint, the fitted densities, the feature classifier, the exported generator (its ONNX files and card).
ARTIFACTS = ("prepared", "npm_tarball", "checkpoint", "density", "classifier", "generator")


class EAEError(Exception):
    """An error caused by inputs (files, data, parameters), not by a bug."""


class ArtifactError(EAEError):
    """An input that another step produces cannot be used; ``artifact`` (one of ``ARTIFACTS``) says which."""

    def __init__(self, message: str, artifact: str):
        if artifact not in ARTIFACTS:
            raise ValueError(f"unknown artifact {artifact!r} (one of {', '.join(ARTIFACTS)})")
        super().__init__(message)
        self.artifact = artifact


class MissingArtifact(ArtifactError):
    """The artifact is absent: it has to be made first."""


class StaleArtifact(ArtifactError):
    """The artifact exists but is broken or belongs to other inputs: it has to be made again."""
