"""The HTTP edge (litestar): ``app.create_app`` wires one module per router, each a set of thin handlers over
the use cases (``rt.app``, and one attribute per use-case area: ``rt.plans``, ``rt.target_draws``, ``rt.inspections``, ...); request and response bodies live in ``schemas``, the
shared plumbing (command context, write answers, If-Match, read-your-writes waits, documented responses) in
``common``; ``errors`` answers every error as RFC 9457 problem+json."""
