"""Kubernetes NetworkPolicy, as the API server accepts it and as a conformant CNI enforces it.

- `selector`: label selectors (matchLabels, matchExpressions);
- `model`: namespaces and policies as frozen data, after the API server's defaulting;
- `verdict`: who may open a connection to whom (egress of the client, ingress of the server).

kpkt/topology/policies.py reads them from a topology file, rejecting what the API server
rejects. Pure: nothing here knows about packets or devices; kpkt/net/policy_filter.py applies the
verdicts on the wire.
"""
