"""Local AWS development environment: an emulator, PostgreSQL and a mail catcher behind Invoke tasks."""

__version__ = "0.1.0"
