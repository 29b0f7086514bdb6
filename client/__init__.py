"""jobq client side: the job format, the broker topology and the publishing CLI.

Installed as ``jobq.client``. It imports nothing from the supervisor or runner.
"""
