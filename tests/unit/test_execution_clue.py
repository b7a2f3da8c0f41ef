"""Clues for case-triggered inspections (个案检查): validation and the risk raise."""

import datetime as dt
import uuid

import pytest

from domain.errors import InvalidInputError
from domain.execution.clue import Clue, raised_risk_class, validate_clue


def test_an_online_monitoring_alert_is_a_valid_clue() -> None:
    clue = validate_clue(
        {
            "source": "monitoring_alert",
            "department": "hj-eeb",
            "target_id": "target-1",
            "received_on": "2024-08-03",
            "summary": " COD 在线监测数据连续 3 小时超标 ",
            "method": "online_monitoring",
            "reference": "预警-0803-17",
        }
    )
    assert clue == Clue(
        "monitoring_alert",
        "hj-eeb",
        "target-1",
        "2024-08-03",
        "COD 在线监测数据连续 3 小时超标",
        "预警-0803-17",
        "online_monitoring",
    )
    assert clue.as_dict()["evidence"] == []


def test_a_bad_clue_names_every_problem() -> None:
    with pytest.raises(InvalidInputError) as err:
        validate_clue(
            {
                "source": "monitoring_alert",
                "department": "EEB",
                "target_id": "",
                "received_on": "2099-01-01",
                "summary": "",
                "method": "on_site",
                "colour": "red",
            },
            today=dt.date(2024, 9, 1),
        )
    assert {(p.field, p.rule) for p in err.value.problems} == {
        ("colour", "unknown_field"),
        ("department", "format"),
        ("target_id", "format"),
        ("received_on", "not_future"),
        ("summary", "required"),
        ("method", "choice"),
    }
    with pytest.raises(InvalidInputError) as err:
        validate_clue({"source": "rumour"})
    assert ("source", "choice") in {(p.field, p.rule) for p in err.value.problems}


def test_a_clue_raises_the_risk_class_by_one() -> None:
    assert [raised_risk_class(c) for c in "ABCD"] == ["B", "C", "D", "D"]
    with pytest.raises(InvalidInputError):
        raised_risk_class("E")


def test_the_earliest_inspection_date_is_the_period_start_or_a_later_clue_date() -> None:
    from domain.execution.cases import case_reason, clue_received_on, earliest_inspection

    clue = validate_clue({"source": "complaint", "department": "hj-eeb", "target_id": str(uuid.uuid4()),
                          "received_on": "2025-03-01", "summary": "群众投诉夜间异味"}, dt.date(2025, 3, 2))
    reason = case_reason(clue)
    assert clue_received_on(reason) == dt.date(2025, 3, 1)
    assert earliest_inspection("2025Q1", "case", reason)[0] == dt.date(2025, 3, 1)
    assert earliest_inspection("2025Q2", "case", reason)[0] == dt.date(2025, 4, 1)
    assert earliest_inspection("2025Q1", "ad_hoc", reason)[0] == dt.date(2025, 1, 1)
    assert clue_received_on("专项检查") is None
