"""The drawn list is read page by page: the pages put together are the whole list as it was built before
paging (one set per visit), for planners (everything) and for inspectors (their own visits only)."""

from hypothesis import given
from hypothesis import strategies as st

from domain.tasks.drawn_list import drawn_page

targets = st.lists(st.sampled_from([f"t{i}" for i in range(40)]), unique=True, max_size=40)


def whole(selected: list[str], off_site_first: list[str], mine: set[str] | None) -> list[tuple[str, bool]]:
    """The list as the endpoint built it before it was paged."""
    chosen = selected if mine is None else [t for t in selected if t in mine]
    return [(t, t in set(off_site_first)) for t in chosen]


@given(
    selected=targets,
    off=targets,
    mine=st.none() | st.sets(st.sampled_from([f"t{i}" for i in range(40)])),
    limit=st.integers(min_value=1, max_value=45),
)
def test_the_pages_together_are_the_whole_list(selected, off, mine, limit) -> None:
    pages: list[tuple[str, bool]] = []
    start: int | None = 0
    while start is not None:
        rows, after = drawn_page(selected, off, mine, start, limit)
        assert len(rows) <= limit
        assert rows or after is None  # no empty page before the end
        assert after is None or after > start
        pages += rows
        start = after
    assert pages == whole(selected, off, mine)


def test_a_page_past_the_end_is_empty_and_last() -> None:
    assert drawn_page(["a", "b"], [], None, 5, 10) == ([], None)
    assert drawn_page(["a", "b", "c"], ["b"], None, 1, 1) == ([("b", True)], 2)
