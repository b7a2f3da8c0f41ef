"""Tamper evidence for the event log: canonical leaves, the RFC 6962 Merkle tree, signed checkpoints, verification."""
