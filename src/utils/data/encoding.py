"""A tabular feature stage's two outputs from the checked tables of its dataset (src/utils/data/tables.py).

`tree_tables`: the table gradient-boosted trees read, written as `train_x.parquet` / `test_x.parquet`: numbers as
they are (missing stays missing), categoricals as pandas categories with the training rows' levels (a level only
the test rows have becomes missing), each date as its year, month, day and weekday.

`network_arrays`: what a network reads, written as `train_x.npy` / `test_x.npy`: numbers imputed with the training
median plus a missing-value indicator where any is missing, then standardised by the training rows; categoricals
one-hot over their `max_levels` most frequent training levels, the rest and missing values in a column of their
own. Both are fitted on the training rows only (scikit-learn's OneHotEncoder, SimpleImputer and StandardScaler).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DATE_PARTS = ("year", "month", "day", "weekday")


def split_dates(frame: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    """Each date column replaced by its parts (numbers; missing where the date is)."""
    out = frame.copy()
    for column in dates:
        when = pd.to_datetime(out.pop(column))
        for part in DATE_PARTS:
            out[f"{column}_{part}"] = getattr(when.dt, part).astype("Float64").astype(np.float64)
    return out


def tree_tables(train: pd.DataFrame, test: pd.DataFrame, columns: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) feature tables for trees; `columns` is the dataset manifest's column description."""
    names = list(columns)
    dates = [c for c, d in columns.items() if d["role"] == "date"]
    train, test = split_dates(train[names], dates), split_dates(test[names], dates)
    for column, d in columns.items():
        if d["role"] == "categorical":
            levels = sorted(train[column].dropna().unique())
            train[column] = pd.Categorical(train[column], categories=levels)
            test[column] = pd.Categorical(test[column], categories=levels)
        elif d["role"] == "number":
            train[column], test[column] = train[column].astype(np.float64), test[column].astype(np.float64)
    return train, test


def network_arrays(train: pd.DataFrame, test: pd.DataFrame, columns: dict, max_levels: int = 20
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(train_x, test_x, column names): float32 arrays a network reads."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    dates = [c for c, d in columns.items() if d["role"] == "date"]
    train, test = split_dates(train[list(columns)], dates), split_dates(test[list(columns)], dates)
    categorical = [c for c, d in columns.items() if d["role"] == "categorical"]
    numbers = [c for c in train.columns if c not in categorical]
    parts_train, parts_test, names = [], [], []
    if numbers:
        imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        a, b = imputer.fit_transform(train[numbers]), imputer.transform(test[numbers])
        flagged = [numbers[i] for i in getattr(imputer.indicator_, "features_", [])] if imputer.indicator_ else []
        scaler = StandardScaler().fit(a)
        scaler.scale_[scaler.scale_ == 0] = 1.0
        parts_train.append(scaler.transform(a))
        parts_test.append(scaler.transform(b))
        names += numbers + [f"{c}_missing" for c in flagged]
    if categorical:
        fill = lambda f: f[categorical].astype(object).where(f[categorical].notna(), "(missing)")  # noqa: E731
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_levels + 1,
                                sparse_output=False)
        parts_train.append(encoder.fit_transform(fill(train)))
        parts_test.append(encoder.transform(fill(test)))
        names += [str(n) for n in encoder.get_feature_names_out(categorical)]
    x = np.hstack(parts_train).astype(np.float32) if parts_train else np.zeros((len(train), 0), np.float32)
    x_test = np.hstack(parts_test).astype(np.float32) if parts_test else np.zeros((len(test), 0), np.float32)
    return x, x_test, names
