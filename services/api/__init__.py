"""The HTTP edge (litestar): ``app.create_app`` wires one module per router, each a set of thin handlers over
the use cases (``rt.app``, ``rt.tasks``, ``rt.execution``); request and response bodies live in ``schemas``, the
shared plumbing (command context, write answers, If-Match, read-your-writes waits, documented responses) in
``common``; ``errors`` answers every error as RFC 9457 problem+json."""
