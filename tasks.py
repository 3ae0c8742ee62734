"""Invoke tasks of the local environment; `invoke --list` shows them."""

from pathlib import Path

from localaws.collections import build_namespace

namespace = build_namespace(Path(__file__).resolve().parent)
