"""Probes and metrics, outside /v1 where infrastructure looks for them: /healthz, /readyz, /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import MetricsDep, RuntimeDep
from api.problems import problem, responses
from api.schemas.health import Health, Ready
from ledger.health import check_readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process answers (liveness); no dependency is checked."""
    return Health()


@router.get("/readyz", response_model=Ready, responses=responses("not_ready"))
def readyz(runtime: RuntimeDep) -> Ready | JSONResponse:
    """Whether the service can work: database, deployment manifest, chain and its id; the indexer's lag."""
    readiness = check_readiness(runtime.sessions, runtime.chain, runtime.deployment)
    ready = Ready.of(readiness)
    if not readiness.ready:
        failed = ", ".join(f"{name}: {outcome}" for name, outcome in readiness.checks.items() if outcome != "ok")
        return problem("not_ready", failed, **ready.model_dump(exclude={"status"}))
    return ready


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition format.", "content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: intake outcomes, the outbox backlog (read now), request latency by route."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
