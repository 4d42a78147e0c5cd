"""AReq builder of the tests: the simulator's (valid by default, any element overridable, None
removes it), so tests and `manage.py simulate_3ds` send the same messages."""

from apps.threeds.simulator.messages import areq

__all__ = ["areq"]
