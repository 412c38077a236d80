# Two images from one file, both from the same lock file:
#   pipeline (the default, last stage): the whole environment of `make repro`, to run the DVC pipeline;
#   runtime: only the generator's HTTP endpoint (eae-serve: numpy, onnxruntime, onnx, Pillow, FastAPI, uvicorn; no
#            torch), serving a generator.onnx mounted at /models.
#   docker build -t eae .                                       # pipeline, CUDA build of torch (PyPI's default wheels)
#   docker build --build-arg TORCH_VARIANT=cpu -t eae:cpu .     # pipeline, CPU-only torch: enough for the digits default
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" eae:cpu dvc repro             # CPU
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" eae dvc repro      # GPU
#   docker build --target runtime -t eae-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/models:/models:ro" eae-serve     # GET http://127.0.0.1:8000/samples.png?n=16
# The images run as the unprivileged user `eae` (uid:gid 1000:1000); `--user` makes files written into the
# mounted working copy belong to you. Multi-GPU training: train.nproc_per_node (README.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN groupadd --gid 1000 eae && useradd --create-home --uid 1000 --gid 1000 --shell /usr/sbin/nologin eae
WORKDIR /opt/eae
COPY requirements.lock pyproject.toml README.md LICENSE ./
COPY eae ./eae
# The runtime and the serve extra at the versions of requirements.lock (constraints: nothing else is installed);
# the lock pins onnxruntime-gpu, whose CPU twin of the same version is `onnxruntime`.
RUN sed 's/^onnxruntime-gpu==/onnxruntime==/' requirements.lock > /tmp/constraints.txt \
    && pip install --no-cache-dir --constraint /tmp/constraints.txt ".[serve]" \
    && rm /tmp/constraints.txt \
    && if python -c "import torch" 2>/dev/null; then echo "torch must not be in the runtime image" >&2; exit 1; fi
USER 1000:1000
WORKDIR /models
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# One worker process per core (--workers N to change it); requests bounded by --max-n.
CMD ["eae-serve", "/models/generator.onnx", "--host", "0.0.0.0", "--port", "8000"]

FROM ${PYTHON_IMAGE} AS pipeline

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
COPY pyproject.toml README.md LICENSE ./
COPY eae ./eae
COPY pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps -e .

# The working copy (a git + DVC repository) is mounted here at run time.
USER 1000:1000
WORKDIR /work
CMD ["dvc", "repro"]
