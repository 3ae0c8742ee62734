"""Secret rotation: the policy each secret carries, the driver that runs the rotation Lambda's steps
where the emulator does not, the schedule checked on `stack.up`, and the checks of `rotation.test`.

This package imports nothing heavy at import time, because the settings import `clock` from it.
"""
