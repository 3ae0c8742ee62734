"""An Ansible-style playbook engine: YAML tasks, each calling one idempotent module."""
