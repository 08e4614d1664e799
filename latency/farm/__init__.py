"""Profiling through device agents (``hwnas profile --remote``): the wire protocol's client and
the farm scheduler that spreads a profile over several agents of one device."""

from .client import (
    WIRE_PROTOCOL,
    AgentClient,
    AgentInfo,
    FarmError,
    ModelFile,
    check_url,
    read_token,
)
from .remote import RemoteProfile, connect, profile_remote
from .scheduler import BACKENDS, FarmProfiler, FarmUnavailableError, backend_for

__all__ = [
    "BACKENDS",
    "WIRE_PROTOCOL",
    "AgentClient",
    "AgentInfo",
    "FarmError",
    "FarmProfiler",
    "FarmUnavailableError",
    "ModelFile",
    "RemoteProfile",
    "backend_for",
    "check_url",
    "connect",
    "profile_remote",
    "read_token",
]
