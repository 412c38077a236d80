# Reproducible environment for the EAE pipeline: the same lock file as `make repro`.
#   docker build -t eae .
#   docker run --rm -v "$PWD:/work" -w /work eae dvc repro          # CPU
#   docker run --rm --gpus all -v "$PWD:/work" -w /work eae dvc repro   # GPU (torch wheel is the CUDA build)
FROM python:3.11-slim

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/eae
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY eae ./eae
COPY pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps -e .

# The working copy (a git + DVC repository) is mounted at run time.
WORKDIR /work
RUN git config --global --add safe.directory /work
CMD ["dvc", "repro"]
