"""FastAPI dependencies: settings, the job store, the model registry, the renderer, auth."""
from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.registry import ModelRegistry
from app.render import Renderer
from app.settings import Settings
from worker.jobs import JobStore

_bearer = HTTPBearer(auto_error=False, description="the server's API_TOKEN")


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def get_renderer(request: Request) -> Renderer:
    return request.app.state.renderer


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[JobStore, Depends(get_store)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]


def require_token(settings: SettingsDep,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    if not settings.api_token:
        raise HTTPException(503, "this server has no API_TOKEN set, so nothing can change state; "
                                 "set API_TOKEN and restart it")
    if creds is None or creds.scheme.lower() != "bearer" or not secrets.compare_digest(
            creds.credentials.encode(), settings.api_token.encode()):
        raise HTTPException(401, "missing or wrong bearer token: send 'Authorization: Bearer <API_TOKEN>'",
                            headers={"WWW-Authenticate": "Bearer"})


Authorized = Depends(require_token)
