"""The rules about *who* compare people (``domain.access.person_of``): an actor is the inspector entry its
account is linked to, whatever account (id, username) or token it acts with. Property-based: for every person,
every team and every way of holding the identity, the same answer."""

import uuid

from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor, is_among, person_of
from domain.errors import PermissionDeniedError
from domain.execution.access import can_enter, can_review
from domain.tasks.access import require_recusal

DEPT = "hj-eeb"
ids = st.uuids().map(str)
names = st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=20)


@st.composite
def accounts_of(draw, person: str) -> Actor:
    """An account of ``person`` (an inspector entry id): any account id, any roles, linked to the entry."""
    roles = draw(st.lists(st.sampled_from(["inspector", "reviewer", "planner"]), min_size=1, unique=True))
    return Actor(subject=draw(ids), department=DEPT, roles=tuple(roles), inspector=person, name=draw(names))


@given(st.data(), ids, st.lists(ids, max_size=5))
def test_no_one_reviews_a_team_they_are_on_with_any_account(data, person, others) -> None:
    team = {person, *others}
    actor = data.draw(accounts_of(person))
    reviewer = Actor(actor.subject, DEPT, ("reviewer",), inspector=person)
    assert not can_review(reviewer, DEPT, team)
    inspector = Actor(actor.subject, DEPT, ("inspector",), inspector=person)
    assert can_enter(inspector, DEPT, team)
    assert person_of(actor) == person and is_among(actor, team)


@given(ids, st.lists(ids, max_size=5), ids)
def test_someone_else_reviews_and_does_not_enter(person, team, account) -> None:
    team_set = set(team) - {person}
    reviewer = Actor(account, DEPT, ("reviewer",), inspector=person)
    assert can_review(reviewer, DEPT, team_set)
    assert not can_enter(Actor(account, DEPT, ("inspector",), inspector=person), DEPT, team_set)


@given(ids, ids, st.lists(ids, max_size=3))
def test_an_account_without_link_is_itself_and_never_an_inspector_by_its_token_string(account, entry, staff) -> None:
    """An unlinked account is compared by its account id: naming an inspector in a token does nothing."""
    actor = Actor(account, DEPT, ("inspector",))
    assert person_of(actor) == account
    assert not can_enter(actor, DEPT, {entry, *staff} - {account})


@given(ids, ids)
def test_recusal_by_the_inspector_concerned_whichever_account(person, account) -> None:
    aliases = {person, "EEB0001"}
    require_recusal(Actor(account, DEPT, ("inspector",), inspector=person), DEPT, person, aliases)
    other = str(uuid.uuid5(uuid.NAMESPACE_OID, person))
    try:
        require_recusal(Actor(account, DEPT, ("inspector",), inspector=other), DEPT, person, aliases)
    except PermissionDeniedError:
        pass
    else:
        raise AssertionError("another inspector declared a conflict for this one")
