"""Pure tamper-evidence code: canonical JSON (RFC 8785), audit leaves, the RFC 6962 Merkle tree."""
