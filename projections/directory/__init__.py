"""Directory read models: departments, items, targets, inspectors and experts."""
