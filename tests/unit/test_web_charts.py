"""The server-side SVG charts: every figure is in the picture's description, text is escaped, a bar never leaves
the plot whatever its value."""

import re

from hypothesis import given
from hypothesis import strategies as st

from services.web.charts import HEIGHT, TOP, Bar, bars

shares = st.one_of(st.none(), st.floats(min_value=0, max_value=50, allow_nan=False))


@given(st.lists(st.tuples(st.text(alphabet="第一二三四季度全年Q1<&>\"' ", max_size=8), st.lists(shares, min_size=2, max_size=2)), min_size=1, max_size=6),
       st.one_of(st.none(), st.floats(min_value=0, max_value=1)))
def test_bars_stay_inside_the_plot_and_name_every_figure(groups: list[tuple[str, list[float | None]]],
                                                         goal: float | None) -> None:
    svg = bars("标题<&>", [(label, [Bar(v) for v in values]) for label, values in groups], ["甲", "乙"], goal=goal)
    assert "<title>标题&lt;&amp;&gt;</title>" in svg
    for y, height in re.findall(r'<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"', svg):
        assert float(y) >= TOP - 0.1 and float(y) + float(height) <= HEIGHT and float(height) >= 0
    desc = re.search(r"<desc>(.*)</desc>", svg, re.S)
    assert desc is not None
    drawn = [v for _, values in groups for v in values if v is not None]
    assert all(f"{v * 100:.0f}%" in desc.group(1) for v in drawn)
    assert "<script" not in svg and "style=" not in svg
