"""The wire layer: header layouts, constants, builders and accessors for the frames kpkt sends.

One small module per protocol (`ethernet`, `arp`, `ipv4`, `ipip`, `icmp`, `udp`, `tcp`,
`vxlan`), on plain `bytes`, with no Scapy and nothing else of kpkt: the datapath (`kpkt/net/`), the
applications, the capture summaries, `trace` and `diff` all read and build frames through it.
Offsets are module constants (an int, or a slice for a multi-byte field), header lengths are
lookup tables and multi-field reads are `struct.Struct`s, so the hot path indexes with them as
cheaply as with a literal offset and calls no function of ours per field.
"""
