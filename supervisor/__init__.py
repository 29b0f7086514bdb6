"""jobq supervisor: the parent process, its ledger, placement policy and metrics.

Installed as ``jobq.supervisor`` (the bare name ``supervisor`` is supervisord's).
"""
