"""Adapters to the outside: the event store's recorder and database, NATS (relay, embedded server, partner helper), evidence storage, files in and out, settings and logging."""
