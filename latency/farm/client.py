"""The host's side of the hwnas device-agent wire protocol (v1): one :class:`AgentClient` per agent.

The agent (``hwnas agent serve``, :mod:`hwnas.latency.agent`) measures ONNX models it is sent over
HTTP/1.1 with a bearer token. The client speaks it with httpx (well kept, pure Python, no
hand-written HTTP) and sorts every outcome into what the scheduler must do about it:

* :class:`AgentAuthError` (401): a wrong token is a configuration error; the agent is dropped.
* :class:`AgentDownError` (connection refused or reset, timeout, a 5xx other than busy): a
  transient fault; retried with back-off, the work moved to other agents.
* :class:`AgentRejectedError` (400, 413): this request will never succeed on this agent (a model
  over its size cap, an invalid model); the architecture is recorded as failed.
* 404 on ``/v1/measure`` (the model is not in the agent's cache, e.g. after a restart): the
  client uploads the model and the reference and asks again, transparently.
* 503 busy: the client waits ``Retry-After`` and asks again.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hwnas.search import HwnasError

__all__ = [
    "WIRE_PROTOCOL",
    "AgentClient",
    "AgentInfo",
    "AgentError",
    "AgentAuthError",
    "AgentDownError",
    "AgentRejectedError",
    "FarmError",
    "ModelFile",
    "check_url",
    "read_token",
]

#: the wire protocol version this client speaks (``/v1/info`` answers ``"protocol": 1``)
WIRE_PROTOCOL = 1
TOKEN_ENV = "HWNAS_AGENT_TOKEN"


class FarmError(HwnasError):
    """A remote profile cannot go on: bad URL or token file, no agent answering or accepting."""


class AgentError(Exception):
    """One agent's answer (or silence) that the scheduler handles; never reaches the user."""

    def __init__(self, url: str, message: str):
        super().__init__(f"{url}: {message}")
        self.url, self.message = url, message


class AgentAuthError(AgentError):
    """401: the agent refuses this token."""


class AgentDownError(AgentError):
    """No usable answer: unreachable, connection lost, timed out, or a server error."""


class AgentRejectedError(AgentError):
    """400/413: the agent refuses this request for good."""


def check_url(url: str) -> str:
    """``url`` normalised to ``http[s]://host:port`` (no trailing slash).

    Raises:
        FarmError: not an http(s) URL with a host, a valid port and no path, query or fragment.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise FarmError(f"--remote {url!r}: {e}; valid: http://HOST:PORT") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FarmError(f"--remote {url!r} is not an agent URL; valid: http://HOST:PORT "
                        "(e.g. http://pi.local:8765)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise FarmError(f"--remote {url!r}: an agent URL has no path, query or user; valid: "
                        "http://HOST:PORT")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def read_token(path: str | Path | None) -> str:
    """The bearer token: the first line of ``path`` (stripped), else ``$HWNAS_AGENT_TOKEN``.

    Raises:
        FarmError: the file cannot be read or is empty, or there is neither file nor variable.
    """
    import os

    if path is None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise FarmError(f"--remote needs a token: --token-file FILE (the agent's token on "
                            f"its first line) or the environment variable {TOKEN_ENV}")
        return token
    try:
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise FarmError(f"--token-file {str(path)!r}: cannot read it ({reason}); valid: a "
                        "readable text file with the agent's token on its first line") from None
    if not token:
        raise FarmError(f"--token-file {str(path)!r} is empty; valid: a file with the agent's "
                        "token on its first line")
    return token


@dataclass(frozen=True)
class ModelFile:
    """An ONNX model the host sends: its bytes' sha256 (the agent's cache key) and where they are.

    The bytes are read from disk when an agent asks for them, so a long profile keeps no models
    in memory.
    """

    sha256: str
    path: Path

    @classmethod
    def of(cls, path: str | Path) -> ModelFile:
        return cls(hashlib.sha256(Path(path).read_bytes()).hexdigest(), Path(path))

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class AgentInfo:
    """What ``GET /v1/info`` said about an agent."""

    url: str
    device: str
    agent: str
    protocol: int
    backends: tuple[str, ...]
    environment: dict[str, Any] = field(hash=False)
    limits: dict[str, Any] = field(hash=False)

    def describe(self) -> dict[str, Any]:
        """The agent, for a table's metadata."""
        return {"url": self.url, "device": self.device, "agent": self.agent,
                "protocol": self.protocol, "backends": list(self.backends),
                "environment": self.environment}


_SHA = re.compile(r"[0-9a-f]{64}")


class AgentClient:
    """One agent at ``url``, authenticated with ``token``.

    Args:
        url: ``http://host:port`` (see :func:`check_url`).
        token: the bearer token.
        connect_timeout: seconds to wait for a TCP connection (an unreachable board answers
            nothing; this bounds how long that takes to notice).
        busy_wait: seconds at most spent waiting on 503 busy answers for one measurement.

    Example:
        >>> client = AgentClient("http://127.0.0.1:8765", "s3cret")  # doctest: +SKIP
        >>> client.info().device                                       # doctest: +SKIP
        'pi4'
    """

    def __init__(self, url: str, token: str, connect_timeout: float = 5.0,
                 busy_wait: float = 600.0):
        import httpx

        self.url, self.busy_wait = check_url(url), busy_wait
        self._httpx = httpx
        self._connect = connect_timeout
        # a fresh connection per request: an agent killed and restarted leaves no stale socket
        # in a pool, and requests are seconds apart, so reuse would save nothing measurable
        self._client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def _request(self, method: str, path: str, read_timeout: float, **kw: Any) -> Any:
        httpx = self._httpx
        timeout = httpx.Timeout(read_timeout, connect=self._connect)
        try:
            return self._client.request(method, path, timeout=timeout, **kw)
        except httpx.TimeoutException as e:
            raise AgentDownError(self.url, f"no answer in time ({type(e).__name__})") from None
        except httpx.TransportError as e:  # refused, reset, DNS, the agent killed mid-answer
            raise AgentDownError(self.url, f"{type(e).__name__}: {e or 'connection lost'}"
                                 ) from None

    def _error(self, response: Any) -> str:
        try:
            message = response.json().get("error")
        except Exception:  # not JSON (a proxy's page): its status line says enough
            message = None
        return " ".join(str(message or response.reason_phrase or "").split())[:500]

    def _check(self, response: Any, what: str) -> Any:
        code = response.status_code
        if code == 401:
            raise AgentAuthError(self.url, f"the agent refused the token ({self._error(response)})"
                                 "; check --token-file against the agent's token")
        if code in (400, 404, 413, 422):
            raise AgentRejectedError(self.url, f"{what}: HTTP {code}: {self._error(response)}")
        if code >= 300:
            raise AgentDownError(self.url, f"{what}: HTTP {code}: {self._error(response)}")
        try:
            body = response.json()
        except ValueError:
            raise AgentDownError(self.url, f"{what}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise AgentDownError(self.url, f"{what}: the answer is not a JSON object")
        return body

    def info(self) -> AgentInfo:
        """``GET /v1/info``.

        Raises:
            AgentAuthError, AgentDownError: see the module's docstring.
            AgentRejectedError: an answer this client cannot read (another protocol).
        """
        body = self._check(self._request("GET", "/v1/info", 10.0), "info")
        try:
            return AgentInfo(url=self.url, device=str(body["device"]),
                             agent=str(body.get("agent", "")), protocol=int(body["protocol"]),
                             backends=tuple(map(str, body.get("backends", []))),
                             environment=dict(body.get("environment") or {}),
                             limits=dict(body.get("limits") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise AgentRejectedError(self.url, f"info: unreadable answer ({e!r}); is it an "
                                     "hwnas agent?") from None

    def upload(self, model: ModelFile) -> None:
        """``PUT /v1/models/{sha256}`` with the model's bytes."""
        data = model.read()
        if hashlib.sha256(data).hexdigest() != model.sha256:  # the cache file changed under us
            raise AgentRejectedError(self.url, f"{model.path} changed since it was hashed")
        self._check(self._request("PUT", f"/v1/models/{model.sha256}", 120.0, content=data,
                                  headers={"Content-Type": "application/octet-stream"}),
                    "upload")

    def measure(self, model: ModelFile, reference: ModelFile | None, backend: str,
                config: dict[str, Any], protocol: dict[str, Any],
                timeout_s: float, memory: bool = False) -> dict[str, Any]:
        """``POST /v1/measure``; uploads the models first when the agent does not hold them.
        ``memory``: the agent also measures the model's peak memory.

        Returns:
            the agent's answer: ``{"status": "ok", "measurement": ..., "reference": ...}`` (and
            ``"memory"`` when asked) or ``{"status": "failed", "error": ...}``.

        Raises:
            AgentAuthError, AgentDownError, AgentRejectedError: see the module's docstring.
        """
        body = {"model": model.sha256, "reference": reference.sha256 if reference else None,
                "backend": backend, "config": config, "protocol": protocol,
                "timeout_s": float(timeout_s)}
        if memory:
            body["memory"] = True
        busy_until = time.monotonic() + self.busy_wait
        uploads = 0
        while True:
            # the answer comes when the measurement ends: allow the watchdog's time and more
            r = self._request("POST", "/v1/measure", timeout_s + 30.0, json=body)
            if r.status_code == 404 and uploads < 2:
                # not in the agent's cache (first use, evicted, or the agent restarted): send
                # what it names, or both when it names neither
                text = self._error(r)
                named = set(_SHA.findall(text))
                for m in (model, reference):
                    if m is not None and (not named or m.sha256 in named):
                        self.upload(m)
                uploads += 1
                continue
            if r.status_code == 503 and time.monotonic() < busy_until:
                try:
                    wait = float(r.headers.get("Retry-After", "1"))
                except ValueError:
                    wait = 1.0
                time.sleep(min(max(wait, 0.1), 30.0))
                continue
            answer = self._check(r, "measure")
            if answer.get("status") not in ("ok", "failed"):
                raise AgentDownError(self.url, f"measure: unknown status {answer.get('status')!r}")
            return answer
