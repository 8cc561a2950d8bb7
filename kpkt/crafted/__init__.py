"""Crafted packets: Scapy packets (or Scapy expressions from a topology file) turned into the
bytes a raw socket sends, with what the sender's stack fills in (kpkt/net/raw.py sends them)."""
