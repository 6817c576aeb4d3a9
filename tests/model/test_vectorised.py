"""Vectorised preprocessing: every handled step gives its own `transform`'s output, column by
column, on new data with nulls and unseen categories; its JSON form gives the same; anything
else is refused naming the step."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from bench.models import linear_pipeline
from examples.churn.train import build_pipeline
from scoring.core.errors import NotCompilable
from scoring.model.column_ops import Encode, Impute, Select
from scoring.model.signature import ModelInput, bind_arrow, bind_inputs
from scoring.model.vectorised import Vectorised, vectorise

NAN = np.nan
INPUTS = (
    ModelInput("segment", "string"),
    ModelInput("region", "string"),
    ModelInput("tenure", "double"),
    ModelInput("spend", "double"),
)


def fit_frame() -> pd.DataFrame:
    """Training inputs as `bind_inputs` gives them: strings with NaN, numbers with NaN."""
    raw = pd.DataFrame(
        {
            "segment": ["retail", "sme", None, "enterprise", "sme", "retail", None, "sme"],
            "region": ["north", "south", "north", None, "east", "south", "east", "north"],
            "tenure": [1.0, 12.0, None, 40.0, 7.5, 3.0, 18.0, None],
            "spend": [10.5, None, 3.25, 99.0, 0.0, None, 42.0, 7.0],
        }
    )
    return bind_inputs(raw, INPUTS)


def new_frame() -> pd.DataFrame:
    """Scoring inputs: nulls everywhere and categories never seen in fit."""
    raw = pd.DataFrame(
        {
            "segment": ["retail", "public", None, "sme", "enterprise", "startup"],
            "region": [None, "west", "north", "east", "south", "north"],
            "tenure": [None, 2.0, 100.0, 0.5, None, 12.0],
            "spend": [1.0, None, None, 1e6, -5.0, 7.0],
        }
    )
    return bind_inputs(raw, INPUTS)


def assert_same_output(fitted: Any, frame: pd.DataFrame) -> Vectorised:
    """The vectorised form (and its JSON round trip) equals `fitted.transform(frame)`,
    densified, column by column; returns the vectorised form."""
    before = frame.copy()
    expected = fitted.transform(frame)
    expected = np.asarray(expected.toarray() if hasattr(expected, "toarray") else expected)
    vectorised = vectorise(fitted, list(frame.columns))
    text = json.dumps(vectorised.to_json(), allow_nan=False)  # plain JSON: no NaN literals
    again = Vectorised.from_json(json.loads(text))
    for name, made in (("vectorised", vectorised), ("from JSON", again)):
        got = made.transform(frame)
        assert got.dtype == np.float64 and got.flags.c_contiguous
        assert got.shape == expected.shape == (len(frame), made.width), name
        for j in range(expected.shape[1]):
            np.testing.assert_array_equal(
                got[:, j],
                expected[:, j].astype("float64"),
                err_msg=f"{name}: output column {j} ({_output_name(fitted, j)})",
            )
    pd.testing.assert_frame_equal(frame, before)  # the input is never written to
    return vectorised


def _output_name(fitted: Any, j: int) -> str:
    try:
        return str(fitted.get_feature_names_out()[j])
    except (AttributeError, ValueError, IndexError):
        return "unnamed"


def fitted(step: Any, frame: pd.DataFrame | None = None) -> Any:
    return step.fit(fit_frame() if frame is None else frame)


def test_the_demo_pipeline_prefix_gives_its_own_output() -> None:
    model = build_pipeline(fit_frame(), seed=1)
    model.fit(fit_frame(), [0, 1, 0, 1, 1, 0, 0, 1])
    assert_same_output(model[:-1], new_frame())


def test_the_demo_pipeline_prefix_gives_its_own_output_on_an_arrow_batch() -> None:
    model = build_pipeline(fit_frame(), seed=1)
    model.fit(fit_frame(), [0, 1, 0, 1, 1, 0, 0, 1])
    raw = new_frame().astype({"segment": object, "region": object})
    batch = pa.RecordBatch.from_pandas(raw, preserve_index=False)
    assert_same_output(model[:-1], bind_arrow(batch, INPUTS))


def test_the_linear_bench_pipeline_prefix_gives_its_own_output() -> None:
    model = linear_pipeline(INPUTS, seed=1)
    model.fit(fit_frame(), [0, 1, 0, 1, 1, 0, 0, 1])
    assert_same_output(model[:-1], new_frame())


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_an_imputer_of_numbers_fills_like_its_own_transform(strategy: str) -> None:
    step = fitted(
        SimpleImputer(strategy=strategy, fill_value=-1.0), fit_frame()[["tenure", "spend"]]
    )
    assert_same_output(step, new_frame()[["tenure", "spend"]])


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_an_imputer_of_strings_fills_like_its_own_transform(strategy: str) -> None:
    columns = ["segment", "region"]
    encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    step = Pipeline([("impute", SimpleImputer(strategy=strategy)), ("encode", encode)])
    assert_same_output(step.fit(fit_frame()[columns]), new_frame()[columns])


def test_an_imputer_for_none_fills_none_and_refuses_nan_like_scikit_learn() -> None:
    train = pd.DataFrame({"s": np.array(["a", None, "b", "a"], dtype=object)})
    frame = pd.DataFrame({"s": np.array([None, "c", "a", None], dtype=object)})
    impute = SimpleImputer(missing_values=None, strategy="constant", fill_value="z")
    step = Pipeline([("impute", impute), ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    assert_same_output(step.fit(train), frame)
    with_nan = pd.DataFrame({"s": np.array([None, NAN], dtype=object)})
    with pytest.raises(ValueError, match="Input contains NaN"):
        step.transform(with_nan)
    with pytest.raises(ValueError, match="column 's': Input contains NaN"):
        vectorise(step, ["s"]).transform(with_nan)


@pytest.mark.parametrize("encoder", [OneHotEncoder(handle_unknown="ignore"), OrdinalEncoder()])
def test_an_imputer_of_nan_before_an_encoder_keeps_none_as_its_own_category(encoder: Any) -> None:
    train = pd.DataFrame({"s": np.array(["a", None, NAN, "b", None], dtype=object)})
    frame = pd.DataFrame({"s": np.array([NAN, None, "b", "a", NAN], dtype=object)})
    impute = SimpleImputer(strategy="constant", fill_value="z")
    step = Pipeline([("impute", impute), ("encode", encoder)]).fit(train)
    assert list(step[-1].categories_[0]) == ["a", "b", "z", None]
    assert_same_output(step, frame)


def test_an_imputer_of_nan_before_an_encoder_with_a_nan_category_fills_nan_rows() -> None:
    train = pd.DataFrame({"s": np.array(["a", NAN, "b"], dtype=object)})
    frame = pd.DataFrame({"s": np.array([NAN, "a", "c"], dtype=object)})
    encode = OneHotEncoder(categories=[["a", "z", NAN]], handle_unknown="ignore")
    step = Pipeline(
        [("impute", SimpleImputer(strategy="constant", fill_value="z")), ("1h", encode)]
    )
    assert_same_output(step.fit(train), frame)


def test_a_column_empty_in_fit_is_dropped_by_a_mean_imputer() -> None:
    train = pd.DataFrame({"x": [NAN] * 4, "y": [1.0, NAN, 3.0, 4.0]})
    frame = pd.DataFrame({"x": [1.0, NAN, 2.0], "y": [NAN, 2.0, NAN]})
    with pytest.warns(UserWarning, match="Skipping features"):
        step = SimpleImputer(strategy="mean").fit(train)
        assert_same_output(step, frame)
    assert vectorise(step, ["x", "y"]).width == 1


def test_float32_inputs_are_imputed_and_scaled_in_float32_as_scikit_learn_does() -> None:
    train = pd.DataFrame({"a": np.array([0.1, NAN, 0.7, 1 / 3], dtype="float32")})
    frame = pd.DataFrame({"a": np.array([NAN, 0.2, 1 / 7, 9.9], dtype="float32")})
    step = Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])
    assert_same_output(step.fit(train), frame)


@pytest.mark.parametrize("drop", [None, "first", "if_binary"])
@pytest.mark.parametrize("unknown", ["ignore", "infrequent_if_exist", "warn"])
def test_a_one_hot_encoder_writes_unknown_categories_as_zeros(
    drop: str | None, unknown: str
) -> None:
    columns = ["segment", "region"]
    train = fit_frame()[columns].fillna("none")
    train.loc[0, "region"] = "north"
    step = OneHotEncoder(handle_unknown=unknown, drop=drop).fit(train)
    frame = new_frame()[columns].fillna("none")
    with pytest.warns(UserWarning) if drop or unknown == "warn" else _no_warning():
        assert_same_output(step, frame)


class _no_warning:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_one_hot_encoder_of_numbers_with_nan_as_a_category_gives_its_own_output() -> None:
    train = pd.DataFrame(
        {"k": [1.0, 2.0, NAN, 5.0, 2.0], "s": np.array(["a", NAN, "b", None, "a"], dtype=object)}
    )
    frame = pd.DataFrame(
        {"k": [NAN, 5.0, 3.0, 1.0], "s": np.array([None, NAN, "c", "b"], dtype=object)}
    )
    step = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train)
    assert_same_output(step, frame)


def test_an_unknown_category_is_an_error_naming_the_column_when_the_encoder_errs() -> None:
    step = fitted(
        ColumnTransformer([("c", OneHotEncoder(handle_unknown="error"), ["region"])]),
        fit_frame().fillna({"region": "east"}),
    )
    frame = new_frame().fillna({"region": "east"})
    with pytest.raises(ValueError, match="unknown categories"):
        step.transform(frame)
    with pytest.raises(ValueError, match=r"\['west'\] in column 'region'"):
        vectorise(step, list(frame.columns)).transform(frame)


@pytest.mark.parametrize("unknown_value", [-1, NAN])
def test_an_ordinal_encoder_codes_unknown_and_missing_values_as_fitted(
    unknown_value: float,
) -> None:
    step = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=unknown_value, encoded_missing_value=-2
    )
    columns = ["segment", "region"]
    assert_same_output(step.fit(fit_frame()[columns]), new_frame()[columns])


@pytest.mark.parametrize(("with_mean", "with_std"), [(True, True), (False, True), (True, False)])
def test_a_standard_scaler_centres_and_scales_as_configured(
    with_mean: bool, with_std: bool
) -> None:
    columns = ["tenure", "spend"]
    step = StandardScaler(with_mean=with_mean, with_std=with_std).fit(fit_frame()[columns])
    assert_same_output(step, new_frame()[columns])


@pytest.mark.parametrize("clip", [False, True])
def test_a_min_max_scaler_scales_and_clips_as_configured(clip: bool) -> None:
    columns = ["tenure", "spend"]
    step = MinMaxScaler(feature_range=(-1, 2), clip=clip).fit(fit_frame()[columns])
    assert_same_output(step, new_frame()[columns])


@pytest.mark.parametrize("remainder", ["passthrough", "drop"])
def test_a_column_transformer_selects_by_position_drops_and_keeps_the_remainder(
    remainder: str,
) -> None:
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="?")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    step = ColumnTransformer(
        [("scale", MinMaxScaler(), [2]), ("gone", "drop", [3]), ("encode", encode, [0])],
        remainder=Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("code", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=9)),
            ]
        )
        if remainder == "passthrough"
        else "drop",
        sparse_threshold=1.0,
    )
    assert_same_output(fitted(step), new_frame())


def test_a_column_transformer_finds_its_columns_by_name_in_a_reordered_wider_frame() -> None:
    step = fitted(
        ColumnTransformer(
            [("n", SimpleImputer(strategy="median"), ["spend", "tenure"])], remainder="drop"
        )
    )
    frame = new_frame()[["spend", "region", "tenure", "segment"]].assign(extra=1.0)
    assert_same_output(step, frame)


def test_text_passed_through_to_the_matrix_is_an_error_naming_the_column() -> None:
    step = fitted(ColumnTransformer([("raw", "passthrough", ["tenure", "segment"])]))
    with pytest.raises(ValueError, match="column 'segment'"):
        vectorise(step, list(new_frame().columns)).transform(new_frame())


def test_a_missing_input_column_is_an_error_naming_it() -> None:
    vectorised = vectorise(
        fitted(ColumnTransformer([("n", StandardScaler(), ["spend"])])), ["spend"]
    )
    with pytest.raises(ValueError, match="spend"):
        vectorised.transform(new_frame().drop(columns="spend"))


@pytest.mark.parametrize(
    ("inner", "named"),
    [
        (FunctionTransformer(np.log1p), "FunctionTransformer"),
        (SimpleImputer(strategy="median", add_indicator=True), "SimpleImputer"),
        (SimpleImputer(missing_values=-1.0), "SimpleImputer"),
        (Pipeline([("s", StandardScaler()), ("f", FunctionTransformer())]), "FunctionTransformer"),
    ],
)
def test_a_step_not_handled_exactly_is_refused_naming_it(inner: Any, named: str) -> None:
    prepare = ColumnTransformer([("numbers", inner, ["tenure"])])
    step = fitted(Pipeline([("prepare", prepare)]), fit_frame().fillna({"tenure": 0.0}))
    with pytest.raises(NotCompilable, match=rf"'preprocessing/prepare/numbers.*' \({named}\)"):
        vectorise(step, list(fit_frame().columns))


def test_a_one_hot_encoder_with_infrequent_categories_is_refused() -> None:
    columns = ["segment"]
    step = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2)
    step.fit(fit_frame()[columns].fillna("none"))
    with pytest.raises(NotCompilable, match=r"'preprocessing' \(OneHotEncoder\).*infrequent"):
        vectorise(step, columns)


def test_a_final_estimator_left_in_the_steps_is_refused_naming_it() -> None:
    model = build_pipeline(fit_frame(), seed=1).fit(fit_frame(), [0, 1, 0, 1, 1, 0, 0, 1])
    with pytest.raises(
        NotCompilable, match=r"'preprocessing/classify' \(HistGradientBoostingClassifier\)"
    ):
        vectorise(model, list(fit_frame().columns))


def test_passthrough_gives_the_number_columns_as_they_are() -> None:
    frame = new_frame()[["tenure", "spend"]]
    np.testing.assert_array_equal(
        vectorise("passthrough", ["tenure", "spend"]).transform(frame), frame.to_numpy()
    )


def test_the_json_form_keeps_the_type_of_every_category_and_fill_value() -> None:
    train = pd.DataFrame({"n": [3, 1, 2, 1], "s": np.array(["b", "a", NAN, "a"], dtype=object)})
    step = ColumnTransformer(
        [
            ("n", OneHotEncoder(), ["n"]),
            (
                "s",
                Pipeline([("i", SimpleImputer(strategy="most_frequent")), ("o", OrdinalEncoder())]),
                ["s"],
            ),
        ]
    ).fit(train)
    data = json.loads(json.dumps(vectorise(step, ["n", "s"]).to_json(), allow_nan=False))
    (select,) = Vectorised.from_json(data).steps
    assert isinstance(select, Select)
    (numbers,), (impute, ordinal) = (steps for _, steps in select.branches)
    assert isinstance(numbers, Encode) and isinstance(ordinal, Encode)
    assert isinstance(impute, Impute)
    assert numbers.categories[0].dtype == np.dtype("int64")
    assert numbers.categories[0].tolist() == [1, 2, 3]
    assert impute.fill.dtype == object and impute.fill.tolist() == ["a"]
    assert [type(c) for c in ordinal.categories[0]] == [str, str]


def test_a_column_the_transformer_selects_by_name_but_the_frame_lacks_is_refused() -> None:
    step = fitted(ColumnTransformer([("n", StandardScaler(), ["spend", "tenure"])]))
    with pytest.raises(NotCompilable, match=r"'preprocessing' \(ColumnTransformer\).*'tenure'"):
        vectorise(step, ["spend", "segment"])


def test_a_step_not_fitted_is_refused_naming_it() -> None:
    with pytest.raises(NotCompilable, match=r"'preprocessing' \(StandardScaler\).*not fitted"):
        vectorise(StandardScaler(), ["spend"])
