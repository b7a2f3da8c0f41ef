"""Use cases, one module per area, on the Application's public surface (``services.application``).

``common`` (Done, the clock, the base), ``lookups`` (the read-model lookups they share); plans, tasks and
draws: ``plans``, ``task_opening``, ``target_draws``, ``merges``, ``teams``; a visit to publication:
``inspections``, ``notices``, ``calendar``, ``evidence``, ``publicity``, ``referrals``, ``clues``,
``follow_ups``. ``services.runtime.Runtime`` builds one object of each.
"""
