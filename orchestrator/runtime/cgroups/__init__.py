"""cgroups for containers: one module per controller, a v1 and a v2 driver behind one
interface (:class:`CgroupDriver`), and :func:`detect` to pick the one this machine runs."""

from orchestrator.runtime.cgroups.base import PARENT, CgroupDriver, Resources, Stats
from orchestrator.runtime.cgroups.detect import detect

__all__ = ["PARENT", "CgroupDriver", "Resources", "Stats", "detect"]
