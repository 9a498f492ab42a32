"""The service's HTTP API as Python calls: one small class over httpx that knows the base URL,
the token and the timeouts, and turns every failure into an `ApiError` of one line."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """A failure a user can act on, as one line (HTTP status and the server's `detail`)."""


def describe(response: httpx.Response) -> str:
    """`409: job X is succeeded; ...` from an error answer: the status and the server's detail
    (422's list of problems joined, each with the field it names), plus Retry-After if sent."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                parts.append(str(item))
                continue
            loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
            parts.append(f"{'.'.join(loc)}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        detail = "; ".join(parts)
    elif detail is None:
        detail = response.text.strip()[:200] or response.reason_phrase
    text = f"{response.status_code}: {detail}"
    if response.headers.get("Retry-After"):
        text += f" (retry after {response.headers['Retry-After']} s)"
    return " ".join(str(text).split())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _job(job_id: str) -> str:
    return "/jobs/" + quote(job_id, safe="")


class Api:
    """Calls of the DCGAN faces service at `url`. `token` (the server's API_TOKEN) is sent with
    every request when given; calls that change state refuse to run without it."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token or None
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------------
    def _check_token(self, auth: bool) -> None:
        if auth and not self.token:
            raise ApiError("this command needs the API token: pass --token or set DCGAN_TOKEN "
                           "(`make run` prints it; it is in runs/.api_token)")

    def _failure(self, method: str, path: str, exc: httpx.HTTPError) -> ApiError:
        if isinstance(exc, httpx.ConnectError):
            return ApiError(f"cannot connect to {self.url}: is the service running? "
                            "(set --url or DCGAN_URL)")
        if isinstance(exc, httpx.TimeoutException):
            return ApiError(f"{method} {self.url}{path}: no answer within {self.timeout:g} s")
        return ApiError(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}")

    def request(self, method: str, path: str, *, auth: bool = False, **kwargs: Any) -> httpx.Response:
        """One request; an error answer or a network failure is an ApiError."""
        self._check_token(auth)
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._failure(method, path, exc) from None
        if response.is_error:
            raise ApiError(describe(response))
        return response

    def download(self, path: str, dest: Path, *, auth: bool = False, params: dict | None = None) -> httpx.Response:
        """Streams an answer into `dest`, through a temporary file beside it, so a failed
        download never leaves half a file under the name asked for."""
        self._check_token(auth)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    response.read()
                    raise ApiError(describe(response))
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
            os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would have made it (mkstemp: 0600)
            os.replace(tmp, dest)
            return response
        except httpx.HTTPError as exc:
            raise self._failure("GET", path, exc) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ---- jobs --------------------------------------------------------------------------
    def train(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", "/train", auth=True, json=body, headers=headers).json()

    def jobs(self) -> list[dict]:
        return self.request("GET", "/jobs").json()["jobs"]

    def job(self, job_id: str) -> dict:
        return self.request("GET", _job(job_id)).json()

    def cancel(self, job_id: str) -> dict:
        return self.request("POST", _job(job_id) + "/cancel", auth=True).json()

    def resume(self, job_id: str, epochs: int | None = None) -> dict:
        body = {"epochs": epochs} if epochs is not None else None
        return self.request("POST", _job(job_id) + "/resume", auth=True, json=body).json()

    def delete(self, job_id: str) -> None:
        self.request("DELETE", _job(job_id), auth=True)

    def checkpoints(self, job_id: str) -> list[dict]:
        return self.request("GET", _job(job_id) + "/checkpoints").json()["checkpoints"]

    def export(self, job_id: str, fmt: str, dest: Path, epoch: int | None = None) -> httpx.Response:
        params: dict[str, Any] = {"format": fmt}
        if epoch is not None:
            params["epoch"] = epoch
        return self.download(_job(job_id) + "/export", dest, auth=True, params=params)

    # ---- the served model ----------------------------------------------------------------
    def default_model(self) -> dict:
        return self.request("GET", "/models/default").json()

    def pin(self, job_id: str, epoch: int | None = None) -> dict:
        body: dict[str, Any] = {"job_id": job_id}
        if epoch is not None:
            body["epoch"] = epoch
        return self.request("POST", "/models/default", auth=True, json=body).json()

    def unpin(self) -> None:
        self.request("DELETE", "/models/default", auth=True)

    # ---- images --------------------------------------------------------------------------
    def faces_zip(self, seeds: str, dest: Path, params: dict[str, Any]) -> httpx.Response | None:
        """GET /faces.zip into `dest`; None when this server has no such route (an older one)."""
        try:
            return self.download("/faces.zip", dest, params={"seeds": seeds, **params})
        except ApiError as exc:
            if str(exc) == "404: Not Found":  # FastAPI's answer for a path it has no route for
                return None
            raise

    def generate(self, params: dict[str, Any]) -> httpx.Response:
        return self.request("GET", "/generate", params=params)

    def directions(self, params: dict[str, Any]) -> dict:
        return self.request("GET", "/directions", params=params).json()

    def nearest(self, params: dict[str, Any]) -> dict:
        return self.request("GET", "/nearest", params=params).json()

    def project(self, picture: bytes, media_type: str, params: dict[str, Any] | None = None) -> dict:
        """POST /project: the latent whose face reproduces `picture` (the raw file bytes)."""
        return self.request("POST", "/project", auth=True, content=picture, params=params or {},
                            headers={"Content-Type": media_type}).json()
