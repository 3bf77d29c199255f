import datetime as dt
import shutil
from pathlib import Path

import pytest

from adapter import mappings as m
from adapter.mappings import (
    MappingProblem,
    MappingsError,
    check_mappings,
    default_mappings_dir,
    load_mappings,
    yuan_to_fen,
)

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"

DEPARTMENTS_HEADER = "code,name_zh,name_en,location,release_time,release_days_ahead\n"
DOCTORS_HEADER = "code,name_zh,name_en,department_code,title_zh,title_en,service_code\n"
DOCUMENTS_HEADER = "code,name_zh,name_en,hl7_type\n"
DOCUMENTS_OK = (DOCUMENTS_HEADER + "RESIDENT_ID,居民身份证,Resident ID,NNCHN\n"
                "PASSPORT,护照,Passport,PPN\n")
FEES_HEADER = "code,name_zh,name_en,kind,amount\n"
SEX_HEADER = "hl7_code,gb_code,name_zh,name_en\n"


def mapdir(tmp_path: Path, **files: str | bytes) -> Path:
    """A copy of the shipped mappings with some files replaced (``departments="..."``)."""
    directory = tmp_path / "mappings"
    shutil.copytree(SHIPPED, directory)
    for stem, content in files.items():
        name = "hl7_profile.toml" if stem == "hl7_profile" else f"{stem}.csv"
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


def where(problems: list[MappingProblem]) -> list[tuple[str, int]]:
    return [(p.file, p.line) for p in problems]


def only(problems: list[MappingProblem], file: str) -> list[MappingProblem]:
    return [p for p in problems if p.file == file]


# --- the shipped data --------------------------------------------------------------------------

def test_shipped_mappings_have_no_problem():
    assert check_mappings(SHIPPED) == []


def test_shipped_mappings_meet_the_demo_minimums():
    maps = load_mappings(SHIPPED)
    assert len(maps.departments) >= 8
    names = {d.name_zh for d in maps.departments.values()}
    for name in ("儿科", "心血管内科", "普通外科", "妇产科", "眼科", "耳鼻咽喉科", "皮肤科",
                 "口腔科", "中医科"):
        assert name in names
    assert maps.departments["PED"].name_en == "Paediatrics"
    assert maps.departments["PED"].release_time == dt.time(7, 30)
    assert all(d.release_days_ahead == 7 for d in maps.departments.values())
    assert len(maps.doctors) >= 18
    assert len(maps.doctors_of("PED")) >= 2
    assert all(maps.doctors_of(code) for code in maps.departments)
    titles = {d.title_zh for d in maps.doctors.values()}
    assert {"主任医师", "副主任医师", "主治医师", "普通门诊"} <= titles
    for doctor in maps.doctors.values():
        assert maps.fee_items[doctor.service_code].kind == "registration"
    assert maps.fee_fen("REG_GENERAL") == 1000
    assert maps.fee_fen("REG_CHIEF") == 5000
    assert maps.fee_fen("LAB_CBC") == 2500
    kinds = {f.kind for f in maps.fee_items.values()}
    assert {"registration", "examination", "laboratory", "drug", "treatment"} <= kinds
    assert all(isinstance(f.amount_fen, int) for f in maps.fee_items.values())
    assert maps.document_type_by_hl7("NNCHN").code == "RESIDENT_ID"
    assert maps.document_type_by_hl7("PPN").code == "PASSPORT"
    assert maps.document_type_by_hl7("XX") is None
    assert len(maps.document_types) >= 6
    assert maps.sexes["M"].gb_code == "1"
    assert maps.sexes["F"].gb_code == "2"
    assert maps.sexes["U"].gb_code == "0"


def test_fee_fen_of_an_unknown_code_raises_key_error():
    with pytest.raises(KeyError):
        load_mappings(SHIPPED).fee_fen("NOPE")


# --- problems: presentation --------------------------------------------------------------------

def test_problem_str_names_file_and_line():
    assert str(MappingProblem("departments.csv", 7, "bad")) == "departments.csv:7: bad"


def test_load_raises_with_every_problem(tmp_path):
    directory = mapdir(tmp_path, departments=DEPARTMENTS_HEADER
                       + "PED,儿科,Paediatrics,MZ-PED,25:00,7\n"
                       + "CARD,心血管内科,Cardiology,MZ-CARD,08:00,99\n")
    with pytest.raises(MappingsError) as caught:
        load_mappings(directory)
    lines = [(p.file, p.line) for p in caught.value.problems]
    assert ("departments.csv", 2) in lines and ("departments.csv", 3) in lines
    assert "departments.csv:2:" in str(caught.value)
    assert "departments.csv:3:" in str(caught.value)


# --- whole-file problems -----------------------------------------------------------------------

def test_missing_file(tmp_path):
    directory = mapdir(tmp_path)
    (directory / "sex.csv").unlink()
    problems = check_mappings(directory)
    assert where(problems) == [("sex.csv", 0)]
    assert "missing" in problems[0].message


def test_missing_file_does_not_cascade_into_reference_problems(tmp_path):
    directory = mapdir(tmp_path)
    (directory / "departments.csv").unlink()
    assert where(check_mappings(directory)) == [("departments.csv", 0)]


def test_not_utf8_names_every_bad_line(tmp_path):
    text = DEPARTMENTS_HEADER + "PED,儿科,Paediatrics,MZ-PED,07:30,7\nX,ok,ok,L,08:00,7\n" \
        + "TCM,中医科,TCM,MZ-TCM,08:00,7\n"
    problems = check_mappings(mapdir(tmp_path, departments=text.encode("gb18030")))
    assert where(only(problems, "departments.csv")) == [("departments.csv", 2),
                                                         ("departments.csv", 4)]
    assert "UTF-8" in problems[0].message


def test_bom_is_accepted(tmp_path):
    shipped = (SHIPPED / "departments.csv").read_bytes()
    directory = mapdir(tmp_path, departments=b"\xef\xbb\xbf" + shipped.replace(b"\n", b"\r\n"))
    assert check_mappings(directory) == []
    assert load_mappings(directory).departments["PED"].name_zh == "儿科"


def test_empty_file(tmp_path):
    problems = check_mappings(mapdir(tmp_path, sex="\n\n"))
    assert where(problems) == [("sex.csv", 0)]
    assert "empty" in problems[0].message


def test_missing_and_unknown_columns(tmp_path):
    text = "code,name_zh,name_en,hl7_type_x,remark\nRESIDENT_ID,居民身份证,Resident ID,NNCHN,x\n"
    problems = check_mappings(mapdir(tmp_path, document_types=text))
    assert where(problems) == [("document_types.csv", 0), ("document_types.csv", 0)]
    text = " | ".join(p.message for p in problems)
    assert "missing column(s): hl7_type" in text
    assert "unknown column(s): hl7_type_x, remark" in text


def test_unknown_column_alone_is_reported_and_rows_still_checked(tmp_path):
    text = DOCUMENTS_OK.replace("hl7_type\n", "hl7_type,remark\n").replace("NNCHN", "NNCHN,a")
    text = text.replace("PPN", "PPN,b") + "BAD CODE,x,x,X1,c\n"
    problems = check_mappings(mapdir(tmp_path, document_types=text))
    assert where(problems) == [("document_types.csv", 0), ("document_types.csv", 4)]


def test_required_columns_are_found_in_any_order_and_case(tmp_path):
    text = "HL7_TYPE,Code,name_en,name_zh\nNNCHN,RESIDENT_ID,Resident ID,居民身份证\n" \
        "PPN,PASSPORT,Passport,护照\n"
    directory = mapdir(tmp_path, document_types=text)
    assert check_mappings(directory) == []
    assert load_mappings(directory).document_types["PASSPORT"].hl7_type == "PPN"


# --- row shape -------------------------------------------------------------------------------

def test_wrong_cell_counts_all_reported(tmp_path):
    text = (SEX_HEADER + "M,1,男,Male\nF,2,女\nU,0,未知,Unknown,extra\n\nO,9,未说明,Not stated\n")
    problems = check_mappings(mapdir(tmp_path, sex=text))
    assert where(problems) == [("sex.csv", 3), ("sex.csv", 4)]
    assert "expected 4 cells, found 3" in problems[0].message
    assert "found 5" in problems[1].message


def test_empty_required_cells_named_by_column(tmp_path):
    text = (SEX_HEADER + "M,1,男,Male\nF,2, ,Female\nU,,未知,\nO,9,未说明,Not stated\n")
    problems = check_mappings(mapdir(tmp_path, sex=text))
    assert where(problems) == [("sex.csv", 3), ("sex.csv", 4), ("sex.csv", 4)]
    assert [p.message for p in problems] == ["name_zh is empty", "gb_code is empty",
                                             "name_en is empty"]


def test_a_row_with_an_empty_cell_still_has_its_other_cells_checked(tmp_path):
    departments = DEPARTMENTS_HEADER + "PED,儿科,,MZ-PED,25:00,61\n"
    doctors = DOCTORS_HEADER + "D1,甲,,NOPE,主任医师,Chief physician,LAB_CBC\n"
    problems = check_mappings(mapdir(tmp_path, departments=departments, doctors=doctors))
    assert [(p.file, p.line, p.message.split()[0]) for p in problems] == [
        ("departments.csv", 2, "name_en"),
        ("departments.csv", 2, "release_time"),
        ("departments.csv", 2, "release_days_ahead"),
        ("doctors.csv", 2, "name_en"),
        ("doctors.csv", 2, "department_code"),
        ("doctors.csv", 2, "service_code"),
    ]


def test_whitespace_and_full_width_spaces_are_stripped_silently(tmp_path):
    text = DOCUMENTS_HEADER + " RESIDENT_ID ,\u3000居民身份证\u3000, Resident ID\t, NNCHN\n" \
        "PASSPORT,护照,Passport,\u3000PPN\u00a0\n"
    directory = mapdir(tmp_path, document_types=text)
    assert check_mappings(directory) == []
    resident = load_mappings(directory).document_types["RESIDENT_ID"]
    assert resident.name_zh == "居民身份证" and resident.name_en == "Resident ID"
    assert resident.hl7_type == "NNCHN"


def test_blank_lines_are_ignored_and_line_numbers_stay_physical(tmp_path):
    text = ("\n" + DEPARTMENTS_HEADER + "\n"
            + "PED,儿科,Paediatrics,MZ-PED,07:30,7\n"
            + "   \n,,,,,\n"
            + "CARD,心血管内科,Cardiology,MZ-CARD,8:00,7\n"
            + "SURG,普通外科,General Surgery,MZ-SURG,08:00,x\n")
    problems = check_mappings(mapdir(tmp_path, departments=text))
    assert where(only(problems, "departments.csv")) == [("departments.csv", 8)]


def test_quoted_cell_spanning_lines_keeps_physical_line_numbers(tmp_path):
    text = (DOCUMENTS_OK + 'X1,"two\nlines",x,X1\n' + "BAD!,x,x,X2\n")
    problems = check_mappings(mapdir(tmp_path, document_types=text))
    assert where(problems) == [("document_types.csv", 4), ("document_types.csv", 6)]
    assert "line break" in problems[0].message


# --- codes -------------------------------------------------------------------------------------

def test_duplicate_codes_name_the_first_line(tmp_path):
    text = (FEES_HEADER
            + "REG_GENERAL,普通,General,registration,10.00\n"
            + "REG_ATTENDING,主治,Attending,registration,15.00\n"
            + "REG_ASSOC_CHIEF,副主任,Associate chief,registration,25.00\n"
            + "REG_CHIEF,主任,Chief,registration,50.00\n"
            + "REG_EXPERT,专家,Expert,registration,100.00\n"
            + "REG_GENERAL,普通,General,registration,12.00\n"
            + "REG_CHIEF,主任,Chief,registration,50.00\n")
    problems = check_mappings(mapdir(tmp_path, fee_items=text))
    assert where(problems) == [("fee_items.csv", 7), ("fee_items.csv", 8)]
    assert "first on line 2" in problems[0].message
    assert "first on line 5" in problems[1].message


@pytest.mark.parametrize("code", ["A B", "儿科", "X" * 41, "a/b", "PED!"])
def test_bad_code_format(tmp_path, code):
    text = (SHIPPED / "departments.csv").read_text(encoding="utf-8")
    text += f"{code},新科,New,MZ-NEW,08:00,7\n"
    problems = check_mappings(mapdir(tmp_path, departments=text))
    assert where(problems) == [("departments.csv", 12)]
    assert "code" in problems[0].message


def test_code_format_accepts_letters_digits_and_punctuation(tmp_path):
    text = (SHIPPED / "departments.csv").read_text(encoding="utf-8")
    text += f"{'a.B-9_' * 6}1234,新科,New,MZ-NEW,08:00,7\n"
    assert check_mappings(mapdir(tmp_path, departments=text)) == []


# --- references --------------------------------------------------------------------------------

def test_doctor_references_must_resolve(tmp_path):
    text = (DOCTORS_HEADER
            + "D1,甲,A,PED,主任医师,Chief physician,REG_CHIEF\n"
            + "D2,乙,B,NOPE,主任医师,Chief physician,REG_CHIEF\n"
            + "D3,丙,C,PED,主任医师,Chief physician,REG_NOPE\n"
            + "D4,丁,D,PED,主任医师,Chief physician,LAB_CBC\n"
            + "D5,戊,E,NOWHERE,主任医师,Chief physician,EXAM_CXR\n")
    problems = check_mappings(mapdir(tmp_path, doctors=text))
    assert where(problems) == [("doctors.csv", 3), ("doctors.csv", 4), ("doctors.csv", 5),
                               ("doctors.csv", 6), ("doctors.csv", 6)]
    messages = [p.message for p in problems]
    assert "department_code 'NOPE' is not in departments.csv" in messages[0]
    assert "service_code 'REG_NOPE' is not in fee_items.csv" in messages[1]
    assert "laboratory fee item, not a registration" in messages[2]


def test_reference_to_a_bad_row_is_reported_once(tmp_path):
    departments = (SHIPPED / "departments.csv").read_text(encoding="utf-8").replace(
        "PED,儿科,Paediatrics,MZ-PED,07:30,7", "PED,儿科,Paediatrics,MZ-PED,7h30,7")
    problems = check_mappings(mapdir(tmp_path, departments=departments))
    assert where(problems) == [("departments.csv", 2)]


# --- departments -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["24:00", "07:60", "0730", "7h30", "07:30:00", "-1:00", "ab"])
def test_bad_release_time(tmp_path, value):
    text = DEPARTMENTS_HEADER + f"PED,儿科,Paediatrics,MZ-PED,{value},7\n"
    problems = check_mappings(mapdir(tmp_path, departments=text))
    assert ("departments.csv", 2) in where(problems)
    assert any("release_time" in p.message for p in problems)


@pytest.mark.parametrize(("value", "expected"), [("00:00", dt.time(0, 0)),
                                                 ("23:59", dt.time(23, 59)),
                                                 ("7:30", dt.time(7, 30))])
def test_good_release_time(tmp_path, value, expected):
    text = (SHIPPED / "departments.csv").read_text(encoding="utf-8").replace("07:30", value)
    directory = mapdir(tmp_path, departments=text)
    assert load_mappings(directory).departments["PED"].release_time == expected


@pytest.mark.parametrize("value", ["61", "-1", "7.0", "seven", "１"])
def test_bad_release_days_ahead(tmp_path, value):
    text = DEPARTMENTS_HEADER + f"PED,儿科,Paediatrics,MZ-PED,07:30,{value}\n"
    problems = check_mappings(mapdir(tmp_path, departments=text))
    assert ("departments.csv", 2) in where(problems)
    assert any("release_days_ahead" in p.message for p in problems)


@pytest.mark.parametrize("value", ["0", "60"])
def test_release_days_ahead_bounds(tmp_path, value):
    text = (SHIPPED / "departments.csv").read_text(encoding="utf-8").replace(
        "07:30,7", f"07:30,{value}")
    directory = mapdir(tmp_path, departments=text)
    assert load_mappings(directory).departments["PED"].release_days_ahead == int(value)


def test_location_with_an_hl7_delimiter_is_refused(tmp_path):
    text = DEPARTMENTS_HEADER + "PED,儿科,Paediatrics,MZ^PED,07:30,7\n"
    problems = check_mappings(mapdir(tmp_path, departments=text))
    assert ("departments.csv", 2) in where(problems)


def test_several_bad_departments_all_reported(tmp_path):
    text = (DEPARTMENTS_HEADER
            + "PED,儿科,Paediatrics,MZ-PED,07:30,7\n"
            + "CARD,心血管内科,Cardiology,MZ-CARD,08:61,7\n"
            + "SURG,普通外科,Surgery,MZ-SURG,08:00,7\n"
            + "OBGYN,妇产科,,MZ-OBGYN,08:00,7\n"
            + "OPH,眼科,Ophthalmology,MZ-OPH,08:00,100\n")
    problems = only(check_mappings(mapdir(tmp_path, departments=text)), "departments.csv")
    assert where(problems) == [("departments.csv", 3), ("departments.csv", 5),
                               ("departments.csv", 6)]


# --- fee items and amounts ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "fen"), [("25.00", 2500), ("0.1", 10), ("0.01", 1),
                                           ("100", 10000), ("18.5", 1850), ("025.00", 2500)])
def test_yuan_to_fen(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["25.001", "-5", "+5", "1e3", "1,000.00", "abc", "0", "0.00",
                                  "", ".5", "5.", "NaN", "Infinity", "２５.００", "25 .00"])
def test_yuan_to_fen_refuses(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


def test_bad_amounts_all_reported_with_their_lines(tmp_path):
    rows = ["25.00", "25.001", "-5", "1e3", '"1,000.00"', "abc", "0", "0.1"]
    text = FEES_HEADER + "".join(
        f"X{i},项目,Item,laboratory,{amount}\n" for i, amount in enumerate(rows))
    text = text.replace("X0,", "REG_GENERAL,").replace("laboratory,25.00", "registration,25.00")
    text += "".join(f"{c},挂号,Reg,registration,10.00\n"
                    for c in ("REG_ATTENDING", "REG_ASSOC_CHIEF", "REG_CHIEF", "REG_EXPERT"))
    directory = mapdir(tmp_path, fee_items=text)
    problems = check_mappings(directory)
    assert where(problems) == [("fee_items.csv", n) for n in range(3, 9)]
    assert all("amount" in p.message for p in problems)
    (directory / "fee_items.csv").write_text(
        "\n".join(line for n, line in enumerate(text.splitlines(), 1) if not 3 <= n <= 8),
        encoding="utf-8")
    maps = load_mappings(directory)
    assert maps.fee_fen("REG_GENERAL") == 2500
    assert maps.fee_fen("X7") == 10


def test_unknown_fee_kind(tmp_path):
    text = (SHIPPED / "fee_items.csv").read_text(encoding="utf-8")
    text += "X1,挂号,Reg,Registration,10.00\nX2,其他,Misc,misc,1.00\n"
    problems = check_mappings(mapdir(tmp_path, fee_items=text))
    assert where(problems) == [("fee_items.csv", 18), ("fee_items.csv", 19)]
    assert "kind" in problems[0].message


# --- document types ----------------------------------------------------------------------------

def test_required_document_types(tmp_path):
    text = DOCUMENTS_HEADER + "HK_MACAO_TRAVEL_PERMIT,港澳居民来往内地通行证,HK permit,HMTP\n"
    problems = check_mappings(mapdir(tmp_path, document_types=text))
    assert where(problems) == [("document_types.csv", 0)]
    assert "RESIDENT_ID, PASSPORT" in problems[0].message


def test_hl7_type_must_be_unique_and_well_formed(tmp_path):
    text = DOCUMENTS_OK + "A,甲,A,PPN\nB,乙,B,NNCHN\nC,丙,C,TOOLONG\nD,丁,D,P^N\n"
    problems = check_mappings(mapdir(tmp_path, document_types=text))
    assert where(problems) == [("document_types.csv", n) for n in (4, 5, 6, 7)]
    assert "also used on line 3" in problems[0].message
    assert "also used on line 2" in problems[1].message


# --- sexes -------------------------------------------------------------------------------------

def test_sex_codes_checked_against_hl7_0001_and_gb_2261(tmp_path):
    text = (SEX_HEADER + "M,1,男,Male\nF,2,女,Female\nU,0,未知,Unknown\n"
            "X,9,?,?\nA,3,?,?\nm,1,男,Male\n")
    problems = check_mappings(mapdir(tmp_path, sex=text))
    assert where(problems) == [("sex.csv", 5), ("sex.csv", 6), ("sex.csv", 7)]
    assert "table 0001" in problems[0].message
    assert "GB/T 2261.1" in problems[1].message


def test_required_sexes(tmp_path):
    problems = check_mappings(mapdir(tmp_path, sex=SEX_HEADER + "M,1,男,Male\n"))
    assert where(problems) == [("sex.csv", 0)]
    assert "F, U" in problems[0].message


# --- the HL7 profile ---------------------------------------------------------------------------

def test_profile_problem_is_reported(tmp_path):
    directory = mapdir(tmp_path, hl7_profile='cancel_message = "SRM^S99"\n')
    problems = check_mappings(directory)
    assert where(problems) == [("hl7_profile.toml", 0)]
    assert "cancel_message" in problems[0].message
    assert str(tmp_path) not in problems[0].message


@pytest.mark.parametrize("content", ['nonsense = 1\n', 'version = \n', 'inbound = 5\n',
                                     'slot_sync_days = "7"\n', b'his_facility = "\xc4\xe3"\n'])
def test_unusable_profile_is_one_problem(tmp_path, content):
    problems = check_mappings(mapdir(tmp_path, hl7_profile=content))
    assert where(problems) == [("hl7_profile.toml", 0)]


def test_missing_profile_means_defaults(tmp_path):
    directory = mapdir(tmp_path)
    (directory / "hl7_profile.toml").unlink()
    assert check_mappings(directory) == []


# --- several files at once ---------------------------------------------------------------------

def test_problems_from_every_file_are_collected_in_file_order(tmp_path):
    directory = mapdir(tmp_path,
                       departments=DEPARTMENTS_HEADER + "PED,儿科,Paediatrics,MZ-PED,07:30,99\n",
                       fee_items=FEES_HEADER + "REG_CHIEF,主任,Chief,registration,-1\n",
                       hl7_profile='processing_id = "X"\n')
    problems = check_mappings(directory)
    files = [p.file for p in problems]
    assert files.index("departments.csv") < files.index("fee_items.csv")
    assert files[-1] == "hl7_profile.toml"
    assert ("departments.csv", 2) in where(problems)
    assert ("fee_items.csv", 2) in where(problems)


# --- where the mappings are --------------------------------------------------------------------

def test_default_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTER_MAPPINGS_DIR", str(tmp_path))
    assert default_mappings_dir() == tmp_path


def test_default_dir_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("ADAPTER_MAPPINGS_DIR", raising=False)
    (tmp_path / "mappings").mkdir()
    monkeypatch.chdir(tmp_path)
    assert default_mappings_dir() == tmp_path / "mappings"


def test_default_dir_beside_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("ADAPTER_MAPPINGS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_mappings_dir() == Path(m.__file__).resolve().parent.parent / "mappings"
    assert default_mappings_dir().resolve() == SHIPPED
