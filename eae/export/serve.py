"""An HTTP endpoint for the exported generator: FastAPI + uvicorn over ``eae.export.runtime.Generator``
(numpy + onnxruntime + Pillow; no torch).

    eae-serve models/generator.onnx [--host 127.0.0.1] [--port 8000] [--workers N] [--max-n 1024]
    python -m eae.export.serve models/generator.onnx ...          # the same

    GET  /samples.png?n=16&seed=0               a PNG grid of n images
    POST /samples  {"n": 16, "seed": 0, "format": "npy" | "png"}
                                                npy: uint8 [n, H, W, C] (numpy's .npy format); png: the grid
    GET  /healthz                               {"status": "ok", model facts}
    GET  /card                                  the model card (generator.json)

The same (model, n, seed) gives the same images on every worker and machine (``Generator.sample``).
Requests are checked before any work: n between 1 and ``--max-n`` (at most ``MAX_GRID``), seed between 0 and
2**63 - 1, a JSON body of at most ``MAX_BODY`` bytes with no unknown field; anything else is a 4xx with a
one-line ``detail``. uvicorn answers 503 beyond ``--limit-concurrency`` open requests per worker.

One worker process per core by default, each running the model on one thread (``threads=1``): on CPU that
serves more requests per second than one process whose requests share intra-op threads, and the workers'
memory stays flat (the load test, benchmarks/serve_load.py). The workers get their settings from the
environment variable ``EAESERVE_SETTINGS`` (JSON), which ``main`` sets.
"""

import argparse
import io
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from eae import __version__
from eae.errors import EAEError
from eae.export.runtime import MAX_GRID, Generator, check_request, cpu_count, grid_png

SETTINGS_VAR = "EAESERVE_SETTINGS"  # not EAE_: that prefix is the pipeline's parameter overrides
DEFAULT_MAX_N = 1024
MAX_BODY = 16 * 1024  # bytes of a POST /samples body
NPY_MEDIA_TYPE = "application/x-npy"


@dataclass(frozen=True)
class ServeSettings:
    """What every worker loads: the model, its checks, the request bound and the threads per worker."""

    model: str
    max_n: int = DEFAULT_MAX_N
    threads: int = 1
    verify: bool = True

    def check(self) -> None:
        if not 1 <= self.max_n <= MAX_GRID:
            raise EAEError(f"--max-n must be between 1 and {MAX_GRID}, got {self.max_n}")
        if self.threads < 0:
            raise EAEError(f"--threads must be >= 0 (0 = every core), got {self.threads}")


def check_sample_request(n: int, seed: int, max_n: int) -> None:
    """``check_request`` (n >= 1, 0 <= seed < 2**63) with the server's bound on n."""
    if not 1 <= n <= max_n:
        raise EAEError(f"n must be between 1 and {max_n} on this server (--max-n), got {n}")
    check_request(n, seed)


def one_line(errors) -> str:
    """pydantic's validation errors as one line: ``where: message`` of the first (and how many more)."""
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def npy_bytes(images: np.ndarray) -> bytes:
    """The array in numpy's .npy format (``np.load(io.BytesIO(data))`` reads it back; no pickle)."""
    buf = io.BytesIO()
    np.save(buf, images, allow_pickle=False)
    return buf.getvalue()


def create_app(settings: ServeSettings, generator: Generator | None = None):
    """The FastAPI application serving ``settings.model`` (``generator``: an already loaded one)."""
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    settings.check()
    gen = generator or Generator(settings.model, threads=settings.threads, verify=settings.verify)
    sha256 = gen.card["sha256"] if gen.card else None

    class SampleRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        n: int = Field(16, description=f"number of images, 1 to {settings.max_n}")
        seed: int = Field(0, description="0 to 2**63 - 1; the same seed gives the same images")
        format: Literal["npy", "png"] = "npy"

    app = FastAPI(
        title="EAE generator",
        version=__version__,
        description="Samples from the exported Entropic Autoencoder generator (ONNX, onnxruntime).",
    )

    def checked(n: int, seed: int) -> None:
        try:
            check_sample_request(n, seed, settings.max_n)
        except EAEError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    def headers(n: int, seed: int) -> dict[str, str]:
        return {"X-EAE-N": str(n), "X-EAE-Seed": str(seed), **({"X-EAE-Model-Sha256": sha256} if sha256 else {})}

    async def sample(n: int, seed: int) -> np.ndarray:
        return await run_in_threadpool(gen.sample, n, seed)  # onnxruntime releases the GIL

    @app.get("/healthz")
    def healthz() -> dict:
        return {
            "status": "ok",
            "model": gen.path.name,
            "sha256": sha256,
            "noise_dim": gen.noise_dim,
            "image_shape": list(gen.image_shape),
            "providers": gen.providers,
            "max_n": settings.max_n,
            "pid": os.getpid(),
        }

    @app.get("/card")
    def card() -> dict:
        if gen.card is None:
            raise HTTPException(status_code=404, detail="no model card: the server was started with --no-verify")
        return gen.card

    @app.get("/samples.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def samples_png(
        n: int = Query(16, description=f"number of images, 1 to {settings.max_n}"),
        seed: int = Query(0, description="0 to 2**63 - 1"),
    ) -> Response:
        checked(n, seed)
        images = await sample(n, seed)
        return Response(await run_in_threadpool(grid_png, images), media_type="image/png", headers=headers(n, seed))

    @app.post(
        "/samples",
        response_class=Response,
        responses={200: {"content": {NPY_MEDIA_TYPE: {}, "image/png": {}}}},
        openapi_extra={"requestBody": {"content": {"application/json": {"schema": SampleRequest.model_json_schema()}}}},
    )
    async def samples(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise HTTPException(status_code=413, detail=f"request body larger than {MAX_BODY} bytes")
        try:
            req = SampleRequest.model_validate_json(bytes(body) or b"{}")
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=one_line(exc.errors())) from None
        checked(req.n, req.seed)
        images = await sample(req.n, req.seed)
        if req.format == "png":
            data, media = await run_in_threadpool(grid_png, images), "image/png"
        else:
            data, media = npy_bytes(images), NPY_MEDIA_TYPE
        return Response(data, media_type=media, headers=headers(req.n, req.seed))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": one_line(exc.errors())})

    @app.exception_handler(EAEError)
    async def eae_error(request: Request, exc: EAEError) -> JSONResponse:  # e.g. NaN pixels from a broken model
        return JSONResponse(status_code=500, content={"detail": str(exc)})

    return app


def app_from_env():
    """uvicorn's factory in each worker: ``create_app`` with the settings ``main`` put in ``EAESERVE_SETTINGS``."""
    raw = os.environ.get(SETTINGS_VAR)
    if not raw:
        raise EAEError(f"{SETTINGS_VAR} is not set: start the server with eae-serve (python -m eae.export.serve)")
    return create_app(ServeSettings(**json.loads(raw)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="eae-serve", description="Serve the EAE ONNX generator over HTTP (no torch).")
    ap.add_argument("model", help="generator.onnx (its card generator.json beside it)")
    ap.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface, e.g. in a container)"
    )
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0 = one per core this process may use)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per worker (0 = every core)")
    ap.add_argument("--max-n", type=int, default=DEFAULT_MAX_N, help=f"most images per request (<= {MAX_GRID})")
    ap.add_argument(
        "--limit-concurrency", type=int, default=64, help="open requests per worker beyond which it answers 503"
    )
    ap.add_argument("--no-verify", action="store_true", help="skip the sha256 check against the model card")
    ap.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = ap.parse_args(argv)
    settings = ServeSettings(str(Path(args.model).resolve()), args.max_n, args.threads, not args.no_verify)
    try:
        settings.check()
        if args.workers < 0 or args.limit_concurrency < 1:
            raise EAEError("--workers must be >= 0 and --limit-concurrency >= 1")
        Generator(settings.model, threads=1, verify=settings.verify)  # a bad model fails here, once, in one line
    except EAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        print(f"error: eae-serve needs {exc.name}: pip install 'eae[serve]'", file=sys.stderr)
        return 2
    os.environ[SETTINGS_VAR] = json.dumps(asdict(settings))
    uvicorn.run(
        "eae.export.serve:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers or cpu_count(),
        limit_concurrency=args.limit_concurrency,
        log_level=args.log_level,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
