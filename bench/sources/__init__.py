"""Metric sources by name: one registry, typed options, the sources hwnas ships."""

from .builtin import (
    DeviceOptions,
    FileOptions,
    LiveAccuracyOptions,
    LiveLatencyOptions,
    ModelStatOptions,
    ModelStatSource,
    TableAccuracy,
    TableAccuracyOptions,
)
from .registry import SourceSpec, create_source, list_sources, register_source, source_spec
from .resources import EnergyOptions, LiveEnergy, LiveResource, ResourceOptions

__all__ = [
    "DeviceOptions",
    "EnergyOptions",
    "LiveEnergy",
    "LiveResource",
    "ResourceOptions",
    "FileOptions",
    "LiveAccuracyOptions",
    "LiveLatencyOptions",
    "ModelStatOptions",
    "ModelStatSource",
    "SourceSpec",
    "TableAccuracy",
    "TableAccuracyOptions",
    "create_source",
    "list_sources",
    "register_source",
    "source_spec",
]
