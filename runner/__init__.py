"""jobq runner: the processes that do the work, the consumer (AMQP) and the monitors (Docker).

Installed as ``jobq.runner``.
"""
