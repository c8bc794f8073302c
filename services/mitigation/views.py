"""Causal mitigation API: recommend for a node, list/inspect/promote model versions, start training."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from services.api.deps import SafeStr, app_settings
from services.audit.service import record
from services.auth.deps import require
from services.config import Settings
from services.mitigation.registry import PolicyCache, model_registry
from services.mitigation.service import active_policy
from services.storage.base import session_scope
from services.worker.queue import CAUSAL_TRAIN, enqueue

Version = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
router = APIRouter(prefix="/api/v1/causal", tags=["causal"])


class RecommendRequest(BaseModel):
    node: dict[str, Any] = Field(description="node_id, cluster and the feature columns of causal.data.FEATURES")
    pin: SafeStr | None = Field(max_length=100, default=None, description="operator pin: force this action")
    cluster_total_nodes: int | None = Field(default=None, ge=1, le=1_000_000)
    cluster_out_of_service: int = Field(default=0, ge=0, le=1_000_000)


def _policies(request: Request) -> PolicyCache:
    """The app's policy cache (one per app, so two apps in one process never share loaded models)."""
    cache = getattr(request.app.state, "causal_policies", None)
    if cache is None:
        cache = request.app.state.causal_policies = PolicyCache()
    return cache


@router.post("/recommend", summary="Recommend a node mitigation with effects, intervals and why")
def recommend(body: RecommendRequest, request: Request, user: str = Depends(require("viewer")),
              settings: Settings = Depends(app_settings)) -> dict:
    from causal.policy import ClusterCapacity

    policy = active_policy(settings, cache=_policies(request))
    if policy is None:
        raise HTTPException(409, "no promoted model yet; train one (POST /api/v1/causal/train or `aiops causal train`)")
    clusters = None
    if body.cluster_total_nodes:
        clusters = {str(body.node.get("cluster")): ClusterCapacity(body.cluster_total_nodes, body.cluster_out_of_service)}
    try:
        return policy.recommend(body.node, pin=body.pin, clusters=clusters).to_dict()
    except (ValueError, TypeError, KeyError) as exc:  # a feature of the wrong type is the caller's error
        raise HTTPException(422, f"invalid node: {exc}") from None


def _version(item) -> dict[str, Any]:
    meta = dict(item.meta)
    return {"version": item.version, "active": item.active, "metrics": meta.get("metrics", {}),
            "refutation": meta.get("refutation"), "data_window": meta.get("data_window"),
            "created_at": meta.get("created_at")}


@router.get("/models", summary="Model versions, oldest first")
def list_models(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings)) -> dict:
    return {"items": [_version(v) for v in model_registry(settings.database_url).list()]}


@router.get("/models/{version}", summary="One model version with its metrics and refutation results")
def get_model(version: Version, user: str = Depends(require("viewer")),
              settings: Settings = Depends(app_settings)) -> dict:
    from causal.registry import RegistryError

    try:
        return _version(model_registry(settings.database_url).get(version))
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from None


class PromoteRequest(BaseModel):
    force: bool = Field(default=False, description="promote even though the refutation gate failed")


@router.post("/models/{version}/promote", summary="Make a model version the active one")
def promote(version: Version, body: PromoteRequest, user: str = Depends(require("approver")),
            settings: Settings = Depends(app_settings)) -> dict:
    from causal.registry import RegistryError

    try:
        item = model_registry(settings.database_url).promote(version, force=body.force)
    except RegistryError as exc:
        raise HTTPException(409, str(exc)) from None
    with session_scope(settings.database_url) as session:
        record(session, actor=user, action="causal.promote", subject=version, data={"force": body.force})
    return _version(item)


class TrainRequest(BaseModel):
    data: SafeStr | None = Field(default=None, max_length=1000,
                                 description="event table file on the worker; default: the events in the database")
    synthetic: int = Field(default=0, ge=0, le=200_000, description="train on N simulated events instead")
    quick: bool = False


@router.post("/train", status_code=202, summary="Train a new model version on the causal queue")
def start_training(body: TrainRequest, user: str = Depends(require("operator")),
                   settings: Settings = Depends(app_settings)) -> dict:
    task_id = enqueue(CAUSAL_TRAIN, priority=6, **body.model_dump())
    with session_scope(settings.database_url) as session:
        record(session, actor=user, action="causal.train", data=body.model_dump())
    return {"task_id": task_id, "queue": "causal"}
