"""The deployment's configuration over HTTP: goals, baseline rules and result vocabulary (read by every
account; changed by an administrator, each change an event with its reason; the history for admins and
auditors)."""

from typing import Annotated, Any

from litestar import Response, Router, get, patch

from domain.configuration import CONFIGURATION_ID
from services.api.common import (
    READ,
    SECURED,
    AnyRequest,
    answers,
    command,
    ctx,
    done,
    example,
    given,
    if_match,
    runtime,
)
from services.api.schemas import ConfigurationChange, ConfigurationView, History, Json

_SETTINGS_NOTE = (
    " Settings: `joint_share_goal` (exact ratio as text: \"0.6\", \"60%\" or \"3/5\"; rule joint_share), "
    "`baseline_rules` (sampling rules as a plan entry's `rules`: the baseline every plan period and the KPIs' "
    "coverage are held to; rules key_ratio, general_ratio, <class>_coverage), `result_codes` (the result "
    "vocabulary: `{code, wording, english, problem_found}`, `no_problem` kept). Defaults: the 2024 notice's."
)


@get("/", sync_to_thread=True, responses=answers(200, ConfigurationView, READ),
     summary="The deployment's configuration",
     description="The current settings, their version (0: never changed, the defaults) and the defaults."
     + _SETTINGS_NOTE)
def show(request: AnyRequest) -> dict[str, Any]:
    return runtime(request).configurations.view()


@patch("/", **command(), summary="Change the deployment's configuration",
       description="Administrators only, with a `reason`; only settings that differ are recorded (one event, "
       "`Configuration.Changed`); `If-Match: \"<version>\"` refuses a change made since (409). Bad values: 422 "
       "naming the setting, nothing recorded." + _SETTINGS_NOTE)
def change(request: AnyRequest, data: Annotated[ConfigurationChange, example("configuration")]) -> Response[Json]:
    rt = runtime(request)
    body = given(data)
    reason = body.pop("reason")
    return done(request, rt.configurations.change(ctx(request), body, reason, if_match(request)))


@get("/history", sync_to_thread=True, responses=answers(200, History, READ),
     summary="History of the deployment's configuration",
     description="Every change in order (admins and auditors): log position, version, time, who, the settings "
     "changed and the reason.")
def history(request: AnyRequest) -> dict[str, Any]:
    rt = runtime(request)
    events = rt.accounts.with_actor_names(rt.configurations.history(request.user))
    return {"id": str(CONFIGURATION_ID), "events": events}


def router() -> Router:
    return Router("/configuration", route_handlers=[show, change, history], tags=["configuration"], security=SECURED)
