"""mappings/next_stop.csv: where a patient goes after paying, by fee kind and department."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from adapter.billing.stops import NextStopError, load_next_stops, next_stops
from adapter.cli import main
from tests.conftest import MAPPINGS

HEADER = "kind,department,place_zh,place_en,location\n"


def _load(tmp_path, rows: str):
    (tmp_path / "next_stop.csv").write_text(HEADER + rows, encoding="utf-8")
    return load_next_stops.__wrapped__(tmp_path)


def test_a_departments_own_place_comes_first_then_the_kinds_then_the_desk():
    stops = load_next_stops(MAPPINGS)
    places = next_stops(stops, [("examination", "PED"), ("laboratory", "PED"),
                                ("laboratory", "INT"), ("examination", "INT"), ("drug", "")])
    assert [p.place("zh-CN") for p in places] == [
        "儿科超声检查室", "检验科采血处", "放射科影像检查室", "门诊西药房取药窗口"]
    assert places[1].place("en") == "Laboratory blood draw"
    assert [p.place_zh for p in next_stops(stops, [("registration", "")])] == ["门诊服务台"]


@pytest.mark.parametrize("rows, problem", [
    ("drug,,药房,Pharmacy,1F\ndrug,,药房二,Pharmacy 2,2F\n", "given twice"),
    ("potion,,药房,Pharmacy,1F\n", "kind must be one of"),
    ("drug,,,Pharmacy,1F\n", "required"),
])
def test_a_bad_table_names_its_line_and_problem(tmp_path, rows, problem):
    with pytest.raises(NextStopError, match=problem):
        _load(tmp_path, rows)


def test_check_mappings_reads_the_table(tmp_path):
    for source in MAPPINGS.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    (tmp_path / "next_stop.csv").write_text("kind,place\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check-mappings", str(tmp_path)])
    assert result.exit_code != 0 and "next_stop.csv" in result.output
