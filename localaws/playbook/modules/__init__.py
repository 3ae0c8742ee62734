"""Playbook modules. Importing this package registers every module in `base.REGISTRY`."""
