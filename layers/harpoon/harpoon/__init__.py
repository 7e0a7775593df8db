"""Harpoon: classify, allocate a HostedAI vGPU, infer, release.

Imports flow one way: functions/* handlers -> harpoon.api / harpoon.domain ->
harpoon.models / harpoon.adapters -> harpoon.{catalog, errors, settings}.
"""

__version__ = "0.1.0"
