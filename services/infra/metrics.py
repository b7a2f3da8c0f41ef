"""Process-wide counters for ``/metrics`` (logins, lockouts, revocations, role changes): thread-safe, per
process (Prometheus sums them over the processes it scrapes)."""

import threading
from collections import Counter

HELP = {
    "dualrandom_logins_total": "Login attempts by outcome (ok, failed).",
    "dualrandom_lockouts_total": "Accounts locked after repeated failed logins.",
    "dualrandom_token_revocations_total": "Tokens and sessions revoked (logouts included).",
    "dualrandom_account_role_changes_total": "Account changes that changed roles.",
    "dualrandom_relay_data_omitted_total": "Messages the relay published without their data (too large for the "
    "NATS server; the data is fetched through ce-dataref).",
}


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def inc(self, name: str, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] += 1

    def value(self, name: str, **labels: str) -> int:
        with self._lock:
            return self._values[(name, tuple(sorted(labels.items())))]

    def lines(self) -> list[str]:
        with self._lock:
            values = dict(self._values)
        out = []
        for name, help_ in HELP.items():
            out += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
            samples = {k: v for k, v in values.items() if k[0] == name}
            if name == "dualrandom_logins_total":
                for outcome in ("ok", "failed"):
                    samples.setdefault((name, (("outcome", outcome),)), 0)
            elif not samples:
                samples[(name, ())] = 0
            for (_, labels), v in sorted(samples.items()):
                shown = "{" + ",".join(f'{k}="{val}"' for k, val in labels) + "}" if labels else ""
                out.append(f"{name}{shown} {v}")
        return out


METRICS = Counters()
