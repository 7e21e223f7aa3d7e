"""Choropleth classification (geo/classify.py): classes, bounds, colours, legend."""

from __future__ import annotations

import pytest

from geo.classify import NO_DATA_COLOUR, classify, palette_colours, parse_breaks
from geo.errors import InvalidInput


def test_fixed_classes_are_closed_on_the_left_as_a_grid_office_reads_them() -> None:
    out = classify([59.99, 60.0, 79.9, 80.0, 94.99, 95.0, 100.0], method="fixed",
                   breaks=(60, 80, 95), palette="RdYlGn", unit="%")  # fmt: skip
    assert out.classes == (0, 1, 1, 2, 2, 3, 3)
    assert [c.label for c in out.legend.classes] == ["< 60%", "60–80%", "80–95%", "≥ 95%"]
    assert [c.count for c in out.legend.classes] == [1, 2, 2, 2]


def test_no_data_gets_its_own_grey_class() -> None:
    out = classify([None, 10.0, None, 20.0], method="quantiles", k=2)
    assert out.classes[0] is None and out.colours[0] == NO_DATA_COLOUR
    assert out.legend.no_data.count == 2
    assert sum(c.count for c in out.legend.classes) == 2


@pytest.mark.parametrize("method", ["quantiles", "equal_interval", "natural_breaks"])
def test_data_driven_classes_contain_their_values(method) -> None:
    values = [float(v) for v in (0, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)]
    out = classify(values, method=method, k=4)
    assert len(out.legend.classes) == 4
    for value, index in zip(values, out.classes, strict=True):
        cls = out.legend.classes[index]
        assert cls.lower <= value <= cls.upper
        if index > 0:  # closed on the right: the lower bound belongs to the class below
            assert value > cls.lower


def test_natural_breaks_separate_obvious_clusters() -> None:
    values = [1.0, 2.0, 1.5, 50.0, 51.0, 52.0, 100.0, 101.0]
    out = classify(values, method="natural_breaks", k=3)
    assert out.classes == (0, 0, 0, 1, 1, 1, 2, 2)


def test_equal_values_merge_classes_and_say_so() -> None:
    out = classify([0.0] * 10 + [1.0], method="quantiles", k=5)
    assert len(out.legend.classes) == 2
    assert out.legend.notes and "2 classes instead of 5" in out.legend.notes[0]


def test_one_value_gives_one_class() -> None:
    out = classify([3.0, 3.0], method="equal_interval", k=5)
    assert out.classes == (0, 0) and len(out.legend.classes) == 1


def test_colours_run_light_to_dark_and_red_to_green() -> None:
    assert palette_colours("YlOrRd", n=3) == ("#ffffcc", "#fd8d3c", "#800026")
    assert palette_colours("RdYlGn", n=4) == ("#d7191c", "#fdae61", "#a6d96a", "#1a9641")


@pytest.mark.parametrize(
    ("text_value", "says"),
    [("", "give finite"), ("1,x", "numbers"), ("3,2", "ascending"), ("1,1", "ascending"),
     ("inf", "finite"), (",".join(str(i) for i in range(12)), "at most")],
)  # fmt: skip
def test_bad_breaks_are_refused_with_the_reason(text_value, says) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_breaks(text_value)


def test_refusals() -> None:
    with pytest.raises(InvalidInput, match="needs breaks"):
        classify([1.0], method="fixed")
    with pytest.raises(InvalidInput, match="k=1"):
        classify([1.0, 2.0], method="quantiles", k=1)
    with pytest.raises(InvalidInput, match="classify 'x'"):
        classify([1.0], method="x")
