"""FastAPI dependencies: settings, the job store, the queue, the model registry, the renderer, auth.

Each is `async` (none of them waits on anything): FastAPI runs a plain `def` dependency in its
thread pool, so a request that needs no thread (/healthz) would otherwise wait for one behind
slow routes."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.directions import DirectionsCache
from app.errors import NoToken, Unauthorized
from app.registry import ModelRegistry
from app.render import Renderer
from app.settings import Settings
from worker.store import JobStore

_bearer = HTTPBearer(auto_error=False, description="the server's API_TOKEN")


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> JobStore:
    return request.app.state.store


async def get_enqueue(request: Request) -> Callable[[str], None]:
    return request.app.state.enqueue


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_renderer(request: Request) -> Renderer:
    return request.app.state.renderer


async def get_directions(request: Request) -> DirectionsCache:
    return request.app.state.directions


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[JobStore, Depends(get_store)]
EnqueueDep = Annotated[Callable[[str], None], Depends(get_enqueue)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]
DirectionsDep = Annotated[DirectionsCache, Depends(get_directions)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token_matches(settings: Settings, creds: HTTPAuthorizationCredentials | None) -> bool:
    return bool(settings.api_token) and creds is not None and creds.scheme.lower() == "bearer" and \
        secrets.compare_digest(creds.credentials.encode(), settings.api_token.encode())


async def require_token(settings: SettingsDep, creds: Credentials) -> None:
    if not settings.api_token:
        raise NoToken()
    if not _token_matches(settings, creds):
        raise Unauthorized()


async def is_operator(request: Request, settings: SettingsDep) -> bool:
    """Whether the caller sent the token (reads then show operator detail); never refuses, and
    is no security requirement of the route (the Authorization header is read directly)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return _token_matches(settings, HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
                          if token else None)


Authorized = Depends(require_token)
OperatorDep = Annotated[bool, Depends(is_operator)]
