"""Use cases, one module per area, on the Application's public surface (``services.application``)."""
