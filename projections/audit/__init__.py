"""The audit read model: the RFC 6962 Merkle tree over the event log (leaves and perfect subtrees)."""
