"""``hwnas agent serve``: measure models for a remote host on this device.

This command imports only the agent (onnxruntime, numpy, onnx, starlette, uvicorn, click): it runs
on boards where torch is not installed (the group loads commands lazily, :mod:`.app`).
"""

from __future__ import annotations

import platform
from pathlib import Path

import click

from .app import ListingGroup

__all__ = ["agent"]


@click.group(cls=ListingGroup)
def agent() -> None:
    """Serve latency measurements from this device to a hwnas host (wire protocol v1)."""


@agent.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (the token guards it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="TCP port (0: a free one, printed at start).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File whose first line is the shared token [default: the token itself "
                   "from $HWNAS_AGENT_TOKEN].")
@click.option("--device-name", default=None,
              help="Name the agent reports (default: the hostname).")
@click.option("--max-model-mb", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Largest model accepted, in MiB (larger uploads get 413).")
def serve(host: str, port: int, token_file: Path | None, device_name: str | None,
          max_model_mb: int) -> None:
    """Listen for measurement requests until interrupted (Ctrl-C)."""
    from hwnas.latency.agent import Agent, AgentSettings, bind_socket, read_token
    from hwnas.latency.agent import serve as serve_agent

    token = read_token(token_file)
    max_bytes = max_model_mb * 2**20
    settings = AgentSettings(token=token, device=device_name or platform.node() or "device",
                             max_model_bytes=max_bytes, cache_bytes=max(4 * max_bytes, 2**28))
    sock = bind_socket(host, port)  # a busy port fails here, in one line, before the worker starts
    state = Agent(settings)
    try:
        ready = state.start()
    except BaseException:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    click.echo(f"hwnas agent: serving {settings.device} on http://{host}:{bound} "
               f"(backends: {', '.join(ready['backends'])})", nl=True)
    serve_agent(state, sock)
