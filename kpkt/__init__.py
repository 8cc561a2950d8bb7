"""kpkt: a packet-level emulator of Kubernetes pod networking."""

__version__ = "0.1.0"
