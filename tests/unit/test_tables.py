"""src.utils.data.tables and .encoding: a CSV read by column roles (each bad value one error line naming the file,
line, column and fix), the target as the task's class indices, and the two encodings of the feature stage."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.tasks import Binary, Regression
from src.utils.core.errors import WorkspaceError
from src.utils.data import encoding, tables

FIX = "re-create the raw files"


def roles(**columns) -> tables.Roles:
    competition = SimpleNamespace(ids=["PassengerId"], targets=["Survived"])
    return tables.Roles.of(competition, OmegaConf.create(columns))


def csv(tmp_path: Path, text: str, name: str = "train.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


TRAIN = """PassengerId,Survived,Sex,Age,Cabin,When
1,0,male,22,,2024-01-05
2,1,female,,C85,2024-02-11
3,1,female,26,,2024-03-01
4,0,male,35,C123,
"""


def test_text_columns_are_categories_numbers_stay_numbers_and_missing_stays_missing(tmp_path: Path) -> None:
    frame = tables.read_table(csv(tmp_path, TRAIN), roles(dates=["When"]), train=True, fix=FIX)
    described = tables.describe(frame, frame.drop(columns="Survived"), roles(dates=["When"]))
    assert {c: d["role"] for c, d in described.items()} == {"Sex": "categorical", "Age": "number",
                                                           "Cabin": "categorical", "When": "date"}
    assert described["Age"]["missing_train"] == 1 and described["Cabin"]["missing_train"] == 2
    assert described["When"]["missing_test"] == 1


@pytest.mark.parametrize("text,columns,message", [
    (TRAIN.replace("35,C123", "thirty,C123"), {}, "train.csv line 5, column Age: 'thirty' is not a number; fix the "
                                                  "value, or add Age to columns.categorical"),
    (TRAIN, {"categorical": ["Sex"]}, "line 3, column Cabin: 'C85' is not a number; fix the value, or add Cabin"),
    (TRAIN.replace("2024-02-11", "soon"), {"dates": ["When"]}, "line 3, column When: 'soon' is not a date"),
    (TRAIN.replace("3,1,female", ",1,female"), {}, "line 4, column PassengerId: missing; every row needs its id"),
    (TRAIN.replace("2,1,female", "2,,female"), {}, "line 3, column Survived: missing; every row needs its target"),
    (TRAIN, {"drop": ["Name"]}, "columns names Name, which "),
    (TRAIN.replace("PassengerId,", "Id,"), {}, "lacks the column(s) PassengerId the competition file names"),
])
def test_a_value_that_does_not_fit_its_role_is_one_line(tmp_path: Path, text: str, columns: dict,
                                                         message: str) -> None:
    with pytest.raises(WorkspaceError, match=None) as err:
        tables.read_table(csv(tmp_path, text), roles(**columns), train=True, fix=FIX)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_target_becomes_the_tasks_class_indices_or_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"Survived": ["no", "yes", "yes"]})
    binary = SimpleNamespace(task=Binary(["Survived"], classes=["no", "yes"]), targets=["Survived"], name="titanic")
    assert tables.encode_target(frame, binary, tmp_path / "train.csv", FIX).tolist() == [0, 1, 1]
    numbers = SimpleNamespace(task=Binary(["Survived"]), targets=["Survived"], name="titanic")
    assert tables.encode_target(pd.DataFrame({"Survived": [1.0, 0.0]}), numbers, tmp_path, FIX).tolist() == [1, 0]
    with pytest.raises(WorkspaceError, match=r"line 3, column Survived: '2' is not one of the task's classes \[0, 1\].*"
                                             r"set task.classes in config/competition/titanic.yaml"):
        tables.encode_target(pd.DataFrame({"Survived": [1, 2]}), numbers, tmp_path / "train.csv", FIX)
    values = SimpleNamespace(task=Regression(["y"]), targets=["y"], name="r")
    assert tables.encode_target(pd.DataFrame({"y": [1.5, 2]}), values, tmp_path, FIX).dtype == np.float32


COLUMNS = {"Sex": {"role": "categorical"}, "Age": {"role": "number"}, "When": {"role": "date"}}


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame({"Sex": pd.array(["m", "f", None, "f"], dtype="string"), "Age": [20.0, np.nan, 30.0, 40.0],
                          "When": pd.to_datetime(["2024-01-05", "2024-02-11", None, "2024-03-01"])})
    test = pd.DataFrame({"Sex": pd.array(["x", "m"], dtype="string"), "Age": [np.nan, 50.0],
                         "When": pd.to_datetime(["2024-05-01", "2024-06-02"])})
    return train, test


def test_the_tree_table_keeps_categories_of_the_training_rows_and_missing_values() -> None:
    x, x_test = encoding.tree_tables(*frames(), COLUMNS)
    assert list(x["Sex"].cat.categories) == ["f", "m"] == list(x_test["Sex"].cat.categories)
    assert x_test["Sex"].isna().tolist() == [True, False]  # a level only the test rows have: missing
    assert x["Age"].isna().sum() == 1 and "When" not in x.columns
    assert x["When_month"].tolist()[:2] == [1.0, 2.0] and np.isnan(x["When_year"].iloc[2])


def test_the_network_arrays_are_imputed_standardised_and_one_hot() -> None:
    x, x_test, names = encoding.network_arrays(*frames(), COLUMNS)
    assert x.dtype == np.float32 and x.shape[1] == x_test.shape[1] == len(names)
    assert not np.isnan(x).any() and not np.isnan(x_test).any()
    numbers = [i for i, n in enumerate(names) if n in ("Age", "When_year", "When_month", "When_day", "When_weekday")]
    assert np.allclose(x[:, numbers].mean(0), 0, atol=1e-6)  # standardised by the training rows
    assert "Age_missing" in names and {"Sex_f", "Sex_m", "Sex_(missing)"} <= set(names)
    unseen = x_test[0, [names.index(n) for n in names if n.startswith("Sex_")]]
    assert unseen.sum() == 0  # a level the training rows never had: no column of its own
