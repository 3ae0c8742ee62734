"""Invoke collections of the toolkit, one per domain, and the namespace that joins them."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection

from localaws.collections import db, email, resources, rotation, stack
from localaws.collections.local_dev import local_dev
from localaws.collections.verify import verify


def build_namespace(project_dir: Path) -> Collection:
    """Build the root namespace for the project checked out at `project_dir`."""
    namespace = Collection()
    namespace.add_collection(stack.collection)
    namespace.add_collection(db.collection)
    namespace.add_collection(email.collection)
    namespace.add_collection(resources.collection)
    namespace.add_collection(rotation.collection)
    namespace.add_task(verify)
    namespace.add_task(local_dev, name="local-dev")
    namespace.configure({"project_dir": str(project_dir)})
    return namespace
