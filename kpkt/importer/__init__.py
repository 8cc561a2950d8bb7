"""`kpkt import`: Kubernetes objects as `kubectl get -o yaml|json` prints them, turned into a
kpkt topology. kpkt reads files only; it never talks to an API server."""
