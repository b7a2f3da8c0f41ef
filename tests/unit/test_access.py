"""Access rules: who may write and read which directory."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access import Actor, can_read, can_write, require_write
from domain.errors import PermissionDeniedError


def actor(dept: str, *roles: str) -> Actor:
    return Actor(subject=f"{dept}:x", department=dept, roles=roles)


def test_a_planner_writes_its_own_items_and_inspectors_only() -> None:
    p = actor("hj-eeb", "planner")
    assert can_write(p, "item", "hj-eeb") and can_write(p, "inspector", "hj-eeb")
    assert not can_write(p, "item", "hj-amr") and not can_write(p, "inspector", "hj-amr")


def test_any_planner_writes_the_shared_target_directory_but_not_departments() -> None:
    assert can_write(actor("hj-amr", "planner"), "target", "shared")
    assert not can_write(actor("hj-amr", "planner"), "department", "hj-amr")
    assert can_write(actor("hj-amr", "admin"), "department", "hj-eeb")


@pytest.mark.parametrize("role", ["inspector", "reviewer", "auditor", "partner"])
def test_other_roles_write_nothing(role: str) -> None:
    a = actor("hj-eeb", role)
    for kind in ("department", "item", "target", "inspector", "expert"):
        assert not can_write(a, kind, "hj-eeb")
    with pytest.raises(PermissionDeniedError):
        require_write(a, "target", "shared")


def test_personal_directories_are_read_only_within_the_department() -> None:
    assert can_read(actor("hj-eeb", "inspector"), "inspector", "hj-eeb")
    assert not can_read(actor("hj-amr", "planner"), "inspector", "hj-eeb")
    assert not can_read(actor("hj-amr", "planner"), "expert", "hj-eeb")
    assert can_read(actor("hj-amr", "auditor"), "inspector", "hj-eeb")


def test_partners_read_departments_and_items_only() -> None:
    p = actor("hj-amr", "partner")
    assert can_read(p, "department") and can_read(p, "item")
    assert not can_read(p, "target")


KINDS = ("department", "item", "target", "inspector", "expert")


@given(dept=st.sampled_from(["hj-eeb", "hj-amr"]), owner=st.none() | st.sampled_from(["hj-eeb", "hj-amr"]),
       kind=st.sampled_from(KINDS))
def test_a_partner_never_reads_personal_data_or_targets_not_even_its_own_departments(
    dept: str, owner: str | None, kind: str
) -> None:
    """Partners read departments and items only: inspectors and experts (names, certificate numbers) of their
    own department were readable."""
    assert can_read(actor(dept, "partner"), kind, owner) == (kind in {"department", "item"})


@given(roles=st.lists(st.sampled_from(["planner", "inspector", "reviewer"]), min_size=1, unique=True),
       kind=st.sampled_from(KINDS), owner=st.sampled_from(["hj-eeb", "hj-amr"]))
def test_a_partner_role_takes_nothing_from_a_departments_own_people(roles: list[str], kind: str, owner: str) -> None:
    staff = actor("hj-eeb", *roles)
    assert can_read(actor("hj-eeb", *roles, "partner"), kind, owner) == can_read(staff, kind, owner)
