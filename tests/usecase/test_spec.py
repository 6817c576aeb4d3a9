"""`usecase.yaml` loading: every key checked, every error one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.core.errors import UseCaseError
from scoring.usecase import default_usecase_dir, load_function, load_usecase
from tests.conftest import CHURN_DIR
from tests.usecase.factory import usecase_doc, write_usecase


def test_the_demo_loads_with_its_sources_features_model_and_trainer():
    churn = load_usecase(CHURN_DIR)
    assert (churn.name, churn.entity, churn.model.task) == ("churn", ("customer_id",), "binary")
    assert sorted(churn.sources) == ["customers", "outcomes", "transactions"]
    assert churn.sources["outcomes"].contract.schedule == "occasional"
    assert churn.sources["customers"].contract.schedule == "daily"
    assert churn.features.python is not None and churn.features.python.function == "build"
    assert churn.train is not None and churn.train.horizon_days == 30


def test_the_second_use_case_loads_with_a_composite_key_sql_and_no_trainer():
    claims = load_usecase(Path(__file__).parents[1] / "usecases" / "claims")
    assert claims.entity == ("insurer_id", "policy_no")
    assert claims.features.sql is not None and claims.features.python is None
    assert claims.train is None
    assert dict(claims.monitor) == {"psi_warn": 0.2, "psi_alert": 0.4}


def test_a_valid_tiny_use_case_loads(tmp_path):
    usecase = load_usecase(write_usecase(tmp_path))
    assert usecase.model.alias == "champion" and usecase.model.threshold == 0.5
    assert usecase.sources["visits"].is_event


def load_fails(tmp_path, doc=None, files=None) -> str:
    folder = write_usecase(tmp_path, doc, files)
    with pytest.raises(UseCaseError) as error:
        load_usecase(folder)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_folder_without_usecase_yaml_is_named(tmp_path):
    with pytest.raises(UseCaseError, match=r"usecase\.yaml: no such file"):
        load_usecase(tmp_path)


def test_an_unknown_key_names_the_key_and_the_file(tmp_path):
    message = load_fails(tmp_path, usecase_doc(modle={"name": "x"}))
    assert message.startswith(f"{tmp_path}/usecase.yaml: modle: unknown key")


def test_an_unknown_nested_key_is_named_with_its_path(tmp_path):
    doc = usecase_doc(model={"name": "m", "task": "binary", "aliass": "x"})
    assert "model.aliass: unknown key (known keys under model:" in load_fails(tmp_path, doc)


def test_two_feature_definitions_are_refused(tmp_path):
    doc = usecase_doc(
        features={
            "python": "features.py:build",
            "sql": "f.sql",
            "contract": "contracts/features.yaml",
        }
    )
    assert "features: exactly one of python, sql, table is needed" in load_fails(tmp_path, doc)


def test_a_missing_file_is_named_with_its_key(tmp_path):
    message = load_fails(tmp_path, files={"features.py": None})
    assert "features.python: file not found:" in message and "features.py" in message


def test_an_unknown_task_lists_the_tasks(tmp_path):
    doc = usecase_doc(model={"name": "m", "task": "ranking"})
    assert "model.task: 'ranking' is not one of ['binary', 'multiclass', 'regression']" in (
        load_fails(tmp_path, doc)
    )


def test_an_entity_column_missing_from_a_source_is_named(tmp_path):
    doc = usecase_doc(entity=["shop_id", "region"])
    message = load_fails(tmp_path, doc)
    assert "sources.visits" in message and "entity column 'region'" in message


def test_a_lookup_source_need_not_carry_the_entity(tmp_path):
    doc = usecase_doc(sources={"visits": {"contract": "contracts/visits.yaml", "lookup": True}})
    doc["entity"] = ["shop_id"]
    assert load_usecase(write_usecase(tmp_path, doc)).sources["visits"].lookup


def test_a_features_contract_without_the_entity_is_named(tmp_path):
    doc = usecase_doc(entity=["visit_id"])
    assert "features.contract" in load_fails(tmp_path, doc)


def test_a_features_contract_must_not_declare_the_engines_columns(tmp_path):
    contract = (
        "name: features\nkind: table\ndescription: d\ncolumns:\n"
        "  - {name: shop_id, type: string, nullable: false, description: s}\n"
        "  - {name: as_of_date, type: date, nullable: false, description: d}\n"
    )
    message = load_fails(tmp_path, files={"contracts/features.yaml": contract})
    assert "'as_of_date' is added by the engine" in message


def test_a_bad_contract_is_named_through_the_key_that_points_to_it(tmp_path):
    message = load_fails(tmp_path, files={"contracts/visits.yaml": "name: visits\ncolumns: 3\n"})
    assert "sources.visits.contract:" in message and "visits.yaml" in message


def test_a_source_name_must_be_the_contracts_name(tmp_path):
    doc = usecase_doc(sources={"trips": "contracts/visits.yaml"})
    assert "contract name 'visits' != 'trips'" in load_fails(tmp_path, doc)


def test_a_bad_name_is_refused_with_its_pattern(tmp_path):
    assert "name: 'Tiny Shop' does not match [a-z][a-z0-9_]*" in load_fails(
        tmp_path, usecase_doc(name="Tiny Shop")
    )


def test_a_threshold_only_makes_sense_for_a_binary_model(tmp_path):
    doc = usecase_doc(model={"name": "m", "task": "regression", "threshold": 0.3})
    assert "model.threshold: only for task binary, not regression" in load_fails(tmp_path, doc)


def test_a_score_only_use_case_needs_no_sources_and_no_contract(tmp_path):
    doc = usecase_doc(
        sources=None, train=None, features={"table": "ml.shop.features", "as_of_column": "day"}
    )
    usecase = load_usecase(write_usecase(tmp_path, doc))
    assert usecase.features.score_only and usecase.features.as_of_column == "day"
    assert not usecase.sources


def test_a_score_only_use_case_with_sources_is_refused(tmp_path):
    doc = usecase_doc(train=None, features={"table": "ml.shop.features"})
    assert "sources: a use case with features.table" in load_fails(tmp_path, doc)


def test_a_function_that_the_file_lacks_is_named_when_loaded(tmp_path):
    doc = usecase_doc(
        features={"python": "features.py:make", "contract": "contracts/features.yaml"}
    )
    usecase = load_usecase(write_usecase(tmp_path, doc))
    assert usecase.features.python is not None
    with pytest.raises(
        UseCaseError, match=r"features\.python: .*features\.py has no function 'make'"
    ):
        load_function(usecase, usecase.features.python)


def test_a_file_that_does_not_import_is_named(tmp_path):
    usecase = load_usecase(
        write_usecase(tmp_path, files={"features.py": "import no_such_module\n"})
    )
    assert usecase.features.python is not None
    with pytest.raises(
        UseCaseError, match=r"features\.py: cannot be imported: ModuleNotFoundError"
    ):
        load_function(usecase, usecase.features.python)


def test_two_use_cases_with_modules_of_the_same_name_do_not_mix(tmp_path):
    one = load_usecase(write_usecase(tmp_path / "one"))
    two_doc = usecase_doc(name="other")
    two = load_usecase(
        write_usecase(
            tmp_path / "two", two_doc, files={"features.py": "def build(s, d):\n    return 2\n"}
        )
    )
    assert one.features.python is not None and two.features.python is not None
    assert load_function(two, two.features.python)(None, None) == 2
    assert load_function(one, one.features.python).__module__ == "scoring_usecases.tiny.features"


def test_the_default_use_case_is_the_environment_variable_then_the_demo(monkeypatch, tmp_path):
    monkeypatch.delenv("SCORING_USECASE", raising=False)
    assert default_usecase_dir() == CHURN_DIR
    monkeypatch.setenv("SCORING_USECASE", str(tmp_path))
    assert default_usecase_dir() == tmp_path


def test_pickled_code_is_refused_unless_the_use_case_allows_it_with_a_boolean(tmp_path):
    assert load_usecase(write_usecase(tmp_path / "a")).model.allow_pickled_code is False
    doc = usecase_doc(model={"name": "m", "task": "binary", "allow_pickled_code": True})
    assert load_usecase(write_usecase(tmp_path / "b", doc)).model.allow_pickled_code is True
    doc = usecase_doc(model={"name": "m", "task": "binary", "allow_pickled_code": "yes"})
    assert "model.allow_pickled_code: expected true or false, got 'yes'" in load_fails(
        tmp_path / "c", doc
    )


def test_a_use_case_sets_its_own_reason_codes_and_compiled_path_and_nothing_else_of_scoring(
    tmp_path,
):
    own = {"reasons": {"top_k": 3}, "compiled": "off", "current_write": "overwrite"}
    usecase = load_usecase(write_usecase(tmp_path / "ok", usecase_doc(scoring=own)))
    assert dict(usecase.scoring) == own
    assert dict(load_usecase(CHURN_DIR).scoring) == {}
    message = load_fails(tmp_path / "bad", usecase_doc(scoring={"batch_size": 10}))
    assert (
        "scoring.batch_size: unknown key "
        "(known keys under scoring: reasons, compiled, current_write)" in message
    )


def test_shadow_aliases_are_read_as_a_tuple_and_default_to_none(tmp_path):
    assert load_usecase(write_usecase(tmp_path / "a")).model.shadow == ()
    doc = usecase_doc(model={"name": "m", "task": "binary", "shadow": ["challenger", "beta"]})
    assert load_usecase(write_usecase(tmp_path / "b", doc)).model.shadow == ("challenger", "beta")


@pytest.mark.parametrize(
    ("shadow", "message"),
    [
        (["champion"], "model.shadow: 'champion' is the serving alias (model.alias)"),
        (["challenger", "challenger"], "model.shadow: expected distinct aliases"),
        ([3], "model.shadow: expected a list of alias names ([a-z][a-z0-9_]*), got [3]"),
        (["Bad Alias"], "model.shadow: expected a list of alias names"),
    ],
)
def test_a_bad_shadow_list_is_named_with_its_key(tmp_path, shadow, message):
    doc = usecase_doc(model={"name": "m", "task": "binary", "shadow": shadow})
    assert message in load_fails(tmp_path, doc)
