"""`kpkt import` of a 5,000-pod `kubectl get nodes,pods,services,endpointslices -A -o yaml`.

Generates the dump (50 nodes x 100 pods behind 500 services, each object with the managedFields,
ownerReferences and status a real one carries, plus a hostNetwork kube-proxy pod per node), then
runs `kpkt import DUMP -o TOPOLOGY` in a fresh process and prints its wall time. Usage:

    python bench/import.py                 # 50 x 100
    python bench/import.py --nodes 10 --pods 20
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PODS_PER_SERVICE = 10


def node(index: int) -> dict:
    name = f"worker-{index:03}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "flannel.alpha.coreos.com/backend-type": "vxlan",
                "flannel.alpha.coreos.com/public-ip": f"10.0.{index // 250}.{index % 250 + 1}",
            },
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "managedFields": [_managed("kube-controller-manager", {"f:spec": {"f:podCIDR": {}}})],
            "uid": f"00000000-0000-4000-8000-{index:012}",
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "addresses": [
                {"address": f"10.0.{index // 250}.{index % 250 + 1}", "type": "InternalIP"},
                {"address": name, "type": "Hostname"},
            ],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.29.2", "osImage": "Debian GNU/Linux 12"},
        },
    }


def pod(node_index: int, index: int, app: str) -> dict:
    name = f"{app}-7c5d9f8b6-{node_index:03}{index:03}"
    ip = f"10.244.{node_index}.{index + 2}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "generateName": f"{app}-7c5d9f8b6-",
            "labels": {"app": app, "pod-template-hash": "7c5d9f8b6"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-7c5d9f8b6"}
            ],
            "managedFields": [
                _managed("kubelet", {"f:status": {"f:podIP": {}, "f:conditions": {}}}),
                _managed("kube-controller-manager", {"f:metadata": {"f:labels": {}}}),
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.25",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "volumeMounts": [{"mountPath": "/var/run/secrets", "name": "token"}],
                }
            ],
            "nodeName": f"worker-{node_index:03}",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": "2026-12-01T10:02:14Z"}
                for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": f"10.0.{node_index // 250}.{node_index % 250 + 1}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0}],
        },
    }


def proxy(node_index: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"kube-proxy-{node_index:05}", "namespace": "kube-system"},
        "spec": {"hostNetwork": True, "nodeName": f"worker-{node_index:03}", "containers": []},
        "status": {"phase": "Running", "podIP": f"10.0.{node_index // 250}.{node_index % 250 + 1}"},
    }


def service(index: int, addresses: list[str]) -> list[dict]:
    app = f"app-{index:04}"
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": app, "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": f"10.96.{1 + index // 250}.{index % 250 + 1}",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
                "selector": {"app": app},
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "addressType": "IPv4",
            "metadata": {
                "name": f"{app}-x7k2p",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": app},
            },
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in addresses],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        },
    ]


def _managed(manager: str, fields: dict) -> dict:
    return {
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": "2026-12-01T10:02:17Z",
    }


def generate(nodes: int, pods: int) -> dict:
    items = [node(index) for index in range(nodes)]
    by_app: dict[int, list[str]] = {}
    for node_index in range(nodes):
        items.append(proxy(node_index))
        for index in range(pods):
            number = node_index * pods + index
            app = number // PODS_PER_SERVICE
            items.append(pod(node_index, index, f"app-{app:04}"))
            by_app.setdefault(app, []).append(f"10.244.{node_index}.{index + 2}")
    for app, addresses in by_app.items():
        items.extend(service(app, addresses))
    return {"apiVersion": "v1", "kind": "List", "items": items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--pods", type=int, default=100, help="pods per node (at most 253)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        dump = Path(folder) / "dump.yaml"
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        dump.write_text(yaml.dump(generate(args.nodes, args.pods), Dumper=dumper))
        size = dump.stat().st_size
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "kpkt", "import", str(dump), "-o", f"{folder}/cluster.yaml"],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"kpkt import failed: {done.stderr}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(
            f"kpkt import: {args.nodes * args.pods} pods on {args.nodes} nodes, "
            f"{size / 2**20:.1f} MiB of YAML: {elapsed:.2f} s wall, "
            f"{usage.ru_utime + usage.ru_stime:.2f} s CPU"
        )


if __name__ == "__main__":
    main()
