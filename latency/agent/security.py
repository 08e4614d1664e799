"""The agent's guards: the shared token, the body caps, and the ONNX check.

The agent runs whatever model it is sent, so it must only run models from someone holding the
token: the token is compared in constant time (``hmac.compare_digest``) before anything else is
read. Bodies are read with a cap, both from ``Content-Length`` and while streaming (a chunked
upload has no length). A model is checked to be ONNX with ``onnx.checker`` before a session ever
sees it, and nothing received is unpickled or becomes a file path.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator
from pathlib import Path

# imported here, on the main thread: importing onnx (its ml_dtypes extension) for the first time
# on a worker thread of the event loop was seen to hang
import onnx

from .wire import AgentError, WireError

__all__ = ["TOKEN_ENV", "read_token", "token_ok", "read_capped", "check_onnx"]

TOKEN_ENV = "HWNAS_AGENT_TOKEN"


def read_token(token_file: Path | None, environ: dict[str, str] | None = None) -> str:
    """The agent's token: the first line of ``token_file`` (stripped), else ``$HWNAS_AGENT_TOKEN``.

    Raises:
        AgentError: no token given, the file cannot be read, or the token is empty.
    """
    env = os.environ if environ is None else environ
    if token_file is None:
        token = env.get(TOKEN_ENV, "").strip()
        if not token:
            raise AgentError(f"no token: pass --token-file FILE or set {TOKEN_ENV}; valid: a "
                             "non-empty secret the host also holds")
        # the variable holds the token itself; one naming a file would make its path the secret
        if os.path.isfile(os.path.expanduser(token)):
            raise AgentError(f"{TOKEN_ENV} names the file {token!r}; it must hold the token "
                             f"itself: pass --token-file {token} instead")
        return token
    try:
        lines = token_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AgentError(f"--token-file {str(token_file)!r} cannot be read ({e}); valid: a "
                         "readable UTF-8 file whose first line is the token") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise AgentError(f"--token-file {str(token_file)!r} is empty; valid: a file whose first "
                         "line is the token")
    return token


def token_ok(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (constant-time compare)."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    # compare even on a wrong scheme, so the time taken says nothing about which part was wrong
    same = hmac.compare_digest(given.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and same


async def read_capped(content_length: str | None, stream: AsyncIterator[bytes], cap: int,
                      what: str) -> bytes:
    """A request body of at most ``cap`` bytes.

    Raises:
        WireError: 413 when ``Content-Length`` or the streamed bytes exceed ``cap``; 400 for a
            malformed ``Content-Length``.
    """
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise WireError(400, "Content-Length is not an integer") from None
        if declared > cap:
            raise WireError(413, f"{what} of {declared} bytes is over the cap of {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > cap:
            raise WireError(413, f"{what} is over the cap of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_onnx(data: bytes) -> None:
    """Refuse bytes that are not a valid ONNX model, before any runtime parses them.

    ``onnx.load_model_from_string`` parses the protobuf (no code runs: protobuf is data) and
    ``onnx.checker.check_model`` checks the graph, opsets and types.

    Raises:
        WireError: 400 saying why.
    """
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends; the reason goes to the caller
        raise WireError(400, f"the body is not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node and not model.graph.output:
        # an empty or foreign protobuf can parse as an empty ModelProto
        raise WireError(400, "the body is not an ONNX model (no graph)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx.checker.ValidationError and C++ errors surfaced as such
        reason = " ".join(str(e).split())[:300]
        raise WireError(400, f"the ONNX model is invalid: {reason}") from None
