"""The import templates come from one source: the API's and the CLI's files are those of docs/templates/ (the
example CSVs start with the template's header row), and a template's header is what the import reads."""

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from domain.errors import InvalidInputError
from services.cli import main
from services.documents.sheets import KIND_FILES, template
from services.infra.imports import parse_file

DOCS = Path(__file__).resolve().parents[2] / "docs" / "templates"


def _sheets(content: bytes) -> list[tuple[str, list[tuple[object, ...]]]]:
    wb = load_workbook(io.BytesIO(content))
    return [(ws.title, list(ws.iter_rows(values_only=True))) for ws in wb.worksheets]


@pytest.mark.parametrize("kind", sorted(KIND_FILES))
def test_the_xlsx_template_is_the_one_in_docs_templates(kind: str) -> None:
    assert _sheets(template(kind, "xlsx")) == _sheets((DOCS / f"{KIND_FILES[kind]}.xlsx").read_bytes())


@pytest.mark.parametrize("kind", sorted(KIND_FILES))
def test_the_csv_template_is_the_header_of_the_example_file_and_of_the_xlsx(kind: str) -> None:
    csv = template(kind, "csv")
    assert csv.startswith(b"\xef\xbb\xbf") and csv.count(b"\n") == 1
    header = csv[3:].decode("utf-8").strip().split(",")
    xlsx_header = [str(h).rstrip("*") for h in _sheets(template(kind, "xlsx"))[0][1][0]]
    assert header == xlsx_header
    example = DOCS / f"{KIND_FILES[kind]}.csv"
    if example.exists():
        assert example.read_text(encoding="utf-8-sig").splitlines()[0].split(",") == header
    # The import reads the template's header: every column known and required ones present, so an empty template
    # is refused only for having no rows (never for an unknown or missing column).
    with pytest.raises(InvalidInputError) as refused:
        parse_file(kind, csv, f"{KIND_FILES[kind]}.csv")
    assert [(p.field, p.rule) for p in refused.value.problems] == [("file", "no_rows")]


def test_the_cli_writes_the_same_template(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    result = CliRunner().invoke(main, ["directory", "template", "targets", "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == template("target", "csv")
    result = CliRunner().invoke(main, ["directory", "template", "inspectors", "-o", str(tmp_path / "i.xlsx")])
    assert result.exit_code == 0 and _sheets((tmp_path / "i.xlsx").read_bytes()) == _sheets(template("inspector", "xlsx"))
    assert CliRunner().invoke(main, ["directory", "template", "plans"]).exit_code == 2
