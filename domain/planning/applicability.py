"""Item applicability (多项合一 merges only what applies): to which targets an inspection item applies.

An item names the targets it applies to by three optional lists, read as a task's scope reads them (each given
list must hold; within a list any value matches; tags: at least one in common): ``applies_to_industries``
(the target's ``industry``), ``applies_to_tags`` (its ``tags``) and ``applies_to_classes`` (its
``supervision_class``). An item with none of them applies to every target (every item stored before the
lists existed). A visit carries, per department, only the items that apply to its target; a department none
of whose items apply does not go; a target to which no item of a task applies is not drawn for it (the
freeze refuses a pool holding one: see ``uncovered``).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

APPLICABILITY_FIELDS = ("applies_to_industries", "applies_to_tags", "applies_to_classes")


def restricted(item: Mapping[str, Any]) -> bool:
    """Does the item name the targets it applies to (False: it applies to every target)?"""
    return any(item.get(name) for name in APPLICABILITY_FIELDS)


def applies(item: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    """Does ``item`` (its directory data) apply to ``target`` (its directory data)?"""
    industries = item.get("applies_to_industries") or ()
    if industries and target.get("industry") not in industries:
        return False
    classes = item.get("applies_to_classes") or ()
    if classes and target.get("supervision_class") not in classes:
        return False
    tags = item.get("applies_to_tags") or ()
    return not tags or bool(set(tags) & set(target.get("tags") or ()))


def applicable(item_ids: Iterable[str], items: Mapping[str, Mapping[str, Any]], target: Mapping[str, Any]) -> list[str]:
    """The ids of ``item_ids`` that apply to ``target``, in their order (an item ``items`` lacks applies)."""
    return [i for i in item_ids if applies(items.get(i, {}), target)]


def visit_items(
    participants: Mapping[str, Sequence[str]], items: Mapping[str, Mapping[str, Any]], target: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Per department, the items of a task that apply to ``target``; departments with none are left out."""
    out = {d: applicable(ids, items, target) for d, ids in participants.items()}
    return {d: ids for d, ids in out.items() if ids}


def uncovered(
    targets: Iterable[tuple[str, Mapping[str, Any]]], item_ids: Sequence[str], items: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """The ids of ``targets`` (``(id, data)`` pairs) to which no item of ``item_ids`` applies. Cheap when an item
    applies to every target (then nothing is uncovered and the targets are not read)."""
    wanted = [items.get(i, {}) for i in item_ids]
    if not wanted or any(not restricted(i) for i in wanted):
        return []
    return [tid for tid, data in targets if not any(applies(i, data) for i in wanted)]
