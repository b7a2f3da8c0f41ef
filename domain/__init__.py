"""Pure domain model of dualrandom: aggregates, value objects and rules; no infrastructure imports."""
