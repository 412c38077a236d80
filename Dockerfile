# Reproducible environment for the EAE pipeline: the same lock file as `make repro`.
#   docker build -t eae .                                       # CUDA build of torch (PyPI's default wheels)
#   docker build --build-arg TORCH_VARIANT=cpu -t eae:cpu .     # CPU-only torch: enough for the digits default
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" eae:cpu dvc repro             # CPU
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" eae dvc repro      # GPU
# The image runs as the unprivileged user `eae` (uid:gid 1000:1000); `--user` makes files written into the
# mounted working copy belong to you. Multi-GPU training: train.nproc_per_node (README.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# cuda: torch and torchvision exactly as pinned in requirements.lock (PyPI's CUDA wheels, ~3 GB
# with the nvidia-* libraries). cpu: the same versions from PyTorch's CPU wheel index, without
# the CUDA libraries (about 10x smaller); everything else still comes from requirements.lock.
ARG TORCH_VARIANT=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1 \
    HOME=/home/eae

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# DL3008 (pin apt versions): git and make come from the base image's Debian release, whose
# security updates replace the exact versions; a pin would break the build at the next update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 eae && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash eae \
    && chmod 1777 /home/eae \
    && git config --system --add safe.directory /work

WORKDIR /opt/eae
COPY requirements.lock ./
RUN if [ "$TORCH_VARIANT" = cpu ]; then \
        grep -vE '^(torch|torchvision|triton|nvidia-[a-z0-9-]+)==' requirements.lock > /tmp/requirements.txt \
        && pip install --no-cache-dir --index-url "$TORCH_CPU_INDEX" \
            "$(grep '^torch==' requirements.lock)+cpu" "$(grep '^torchvision==' requirements.lock)+cpu"; \
    elif [ "$TORCH_VARIANT" = cuda ]; then \
        cp requirements.lock /tmp/requirements.txt; \
    else \
        echo "TORCH_VARIANT must be cuda or cpu, got '$TORCH_VARIANT'" >&2; exit 2; \
    fi \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY eae ./eae
COPY pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps -e .

# The working copy (a git + DVC repository) is mounted here at run time.
USER 1000:1000
WORKDIR /work
CMD ["dvc", "repro"]
