"""Models of the kernel objects a node has: devices, bridge, VXLAN, routes, neighbours, IPv4."""
