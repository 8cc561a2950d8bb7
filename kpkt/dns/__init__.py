"""Cluster DNS: CoreDNS as kubeadm installs it, the upstream server behind it, and the pods' stub
resolvers.

Every server here is sans-IO: bytes in, bytes out (or nothing, or a query to carry elsewhere), so
the emulated network can put each message on the wire and `kpkt dns serve` can answer on real
sockets with the same code.
"""
