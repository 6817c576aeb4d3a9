"""`usecase.yaml`: a use case folder read into typed, frozen objects, checked key by key.

Every key is documented in docs/usecases.md. Loading checks everything that can be checked
without running code or Spark: the keys (an unknown one is an error naming it and the file),
the contracts (they parse, the entity key is in each source and in the features contract),
that the files the use case names exist. `scoring doctor --usecase DIR` goes further
(imports the feature code, resolves the model).

Example:
    >>> usecase = load_usecase(Path("tests/usecases/claims"))  # doctest: +SKIP
    >>> usecase.entity, sorted(usecase.sources), usecase.model.task  # doctest: +SKIP
    (('insurer_id', 'policy_no'), ['claims', 'policies'], 'regression')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from scoring.core.contracts import Contract, read_contract
from scoring.core.errors import ContractError, UseCaseError
from scoring.core.yamlfile import read_mapping

USECASE_FILE = "usecase.yaml"
TASKS = ("binary", "multiclass", "regression")
#: Columns the engine adds to every features row; a features contract must not declare them.
AS_OF_DATE = "as_of_date"
FEATURE_RUN_ID = "feature_run_id"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^(?P<file>[^:]+\.py):(?P<function>[A-Za-z_]\w*)$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOP_KEYS = (
    "name",
    "description",
    "entity",
    "sources",
    "features",
    "model",
    "train",
    "sample_data",
    "monitor",
    "quality",
    "labels",
    "retrain",
    "promotion",
    "scoring",
)
#: The keys of usecase.yaml `retrain:` (their values are checked with the configuration's).
_RETRAIN_KEYS = ("on", "alias", "cooldown_days")
#: The `scoring` settings a use case may set for itself (merged over conf/, before --set).
USECASE_SCORING_KEYS = ("reasons", "compiled", "current_write")
_T = TypeVar("_T")


@dataclass(frozen=True)
class CodeRef:
    """A function in a use case file: `features.py:build`."""

    file: Path
    function: str
    key: str

    def __str__(self) -> str:
        return f"{self.file}:{self.function}"


@dataclass(frozen=True)
class Source:
    """One raw source: its contract; a `lookup` source need not carry the entity key."""

    name: str
    contract: Contract
    lookup: bool = False

    @property
    def is_event(self) -> bool:
        """An event source (it has an event time) rather than a dimension."""
        return self.contract.event_time_column is not None


@dataclass(frozen=True)
class FeaturesSpec:
    """How the features of a date come about: Python, SQL, or an existing table."""

    contract: Contract | None
    python: CodeRef | None = None
    sql: Path | None = None
    table: str | None = None
    as_of_column: str = AS_OF_DATE

    @property
    def score_only(self) -> bool:
        """The features are a table the user maintains: nothing to ingest or build."""
        return self.table is not None


@dataclass(frozen=True)
class ModelSpec:
    """The registered model, its task and what its loading may trust."""

    name: str
    alias: str
    task: str
    skops_trusted_types: tuple[str, ...] = ()
    positive_class: str = "1"
    threshold: float = 0.5
    # Load models whose loading runs code (custom pyfuncs, pickles): docs/scoring.md.
    allow_pickled_code: bool = False
    # Aliases of the same registered model scored in the serving alias's pass, into
    # `scores` only (champion / challenger: docs/scoring.md).
    shadow: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainSpec:
    """The use case's trainer: a label function, a fit function, the label's horizon."""

    fit: CodeRef
    label: CodeRef
    horizon_days: int


@dataclass(frozen=True)
class LabelsSpec:
    """Where the outcomes of scored rows arrive: a source whose bronze table holds, per
    entity, the as-of date of the scored slice an outcome belongs to and the outcome."""

    source: str
    as_of: str
    outcome: str


@dataclass(frozen=True)
class UseCase:
    """A use case folder, loaded and checked."""

    name: str
    folder: Path
    entity: tuple[str, ...]
    sources: Mapping[str, Source]
    features: FeaturesSpec
    model: ModelSpec
    train: TrainSpec | None = None
    sample_data: CodeRef | None = None
    monitor: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    quality: Mapping[str, Any] = field(default_factory=dict)
    labels: LabelsSpec | None = None
    # Overrides of the configuration's `retrain:` section (merged over it by the CLI).
    retrain: Mapping[str, Any] = field(default_factory=dict)
    # Overrides of the `promotion:` configuration section (docs/promotion.md).
    promotion: Mapping[str, Any] = field(default_factory=dict)
    # Overrides of conf/ `scoring` settings (`reasons`, `compiled`, `current_write`).
    # e.g. {"reasons": {"top_k": 3}}.
    scoring: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The use case's `usecase.yaml`."""
        return self.folder / USECASE_FILE


def load_usecase(folder: str | Path) -> UseCase:
    """Read and check `<folder>/usecase.yaml` (see the module docstring).

    Raises:
        UseCaseError: one line naming the file and the key that is wrong.
    """
    folder = Path(folder).expanduser().absolute()
    path = folder / USECASE_FILE
    raw = read_mapping(path, UseCaseError, f"no such file (a use case folder holds {USECASE_FILE})")
    where = _Where(path, folder)
    where.unknown(raw, _TOP_KEYS, "")
    name = where.text(raw, "name", pattern=_NAME, hint="[a-z][a-z0-9_]*")
    entity = where.names(raw, "entity")
    sources = _sources(where, raw.get("sources") or {}, entity)
    features = _features(where, where.mapping(raw, "features", required=True), entity)
    if features.score_only and sources:
        where.fail("sources", "a use case with features.table scores an existing table: drop it")
    model = _model(where, where.mapping(raw, "model", required=True))
    train = _train(where, raw.get("train"))
    sample = raw.get("sample_data")
    if sample is not None:
        where.unknown(sample, ("python",), "sample_data")
    return UseCase(
        name=name,
        folder=folder,
        entity=entity,
        sources=sources,
        features=features,
        model=model,
        train=train,
        sample_data=where.code(sample, "python", "sample_data") if sample is not None else None,
        monitor=where.mapping(raw, "monitor", required=False),
        description=str(raw.get("description") or "").strip(),
        quality=where.mapping(raw, "quality", required=False),
        labels=_labels(where, raw.get("labels"), sources, entity),
        retrain=_retrain(where, raw),
        promotion=where.mapping(raw, "promotion", required=False),
        scoring=_scoring(where, raw),
    )


@dataclass(frozen=True)
class _Where:
    """Error messages that name the file and the dotted key."""

    path: Path
    folder: Path

    def fail(self, key: str, message: str) -> NoReturn:
        raise UseCaseError(f"{self.path}: {key}: {message}")

    def unknown(self, raw: Any, known: tuple[str, ...], prefix: str) -> None:
        if not isinstance(raw, Mapping):
            self.fail(prefix or "<top>", f"expected a mapping, got {type(raw).__name__}")
        extra = sorted(set(raw) - set(known))
        if extra:
            key = f"{prefix}.{extra[0]}" if prefix else str(extra[0])
            self.fail(
                key,
                f"unknown key (known keys{' under ' + prefix if prefix else ''}: "
                f"{', '.join(known)})",
            )

    def text(
        self,
        raw: Mapping[str, Any],
        key: str,
        prefix: str = "",
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        default: str | None = None,
    ) -> str:
        dotted = f"{prefix}.{key}" if prefix else key
        value = raw.get(key, default)
        if value is None:
            self.fail(dotted, "missing")
        if not isinstance(value, str) or not value:
            self.fail(dotted, f"expected a text, got {value!r}")
        if pattern is not None and not pattern.match(value):
            self.fail(dotted, f"'{value}' does not match {hint or pattern.pattern}")
        return value

    def names(self, raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = raw.get(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.fail(key, f"expected one column name or a list of them, got {value!r}")
        if not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
            self.fail(key, f"expected distinct column names, got {value!r}")
        return tuple(value)

    def mapping(self, raw: Mapping[str, Any], key: str, required: bool) -> dict[str, Any]:
        value = raw.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, f"expected a mapping, got {value!r}")
        return dict(value)

    def file(self, value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected a file path relative to {self.folder}, got {value!r}")
        path = self.folder / value
        if not path.is_file():
            self.fail(key, f"file not found: {path}")
        return path

    def code(self, raw: Mapping[str, Any], key: str, prefix: str) -> CodeRef:
        dotted = f"{prefix}.{key}"
        value = raw.get(key)
        match = _CODE.match(value) if isinstance(value, str) else None
        if match is None:
            self.fail(dotted, f"expected 'file.py:function', got {value!r}")
        return CodeRef(self.file(match["file"], dotted), match["function"], dotted)

    def contract(self, value: Any, key: str) -> Contract:
        try:
            return read_contract(self.file(value, key))
        except ContractError as exc:
            raise UseCaseError(f"{self.path}: {key}: {exc}") from exc

    def typed(self, raw: Mapping[str, Any], key: str, kind: type[_T], default: _T) -> _T:
        value = raw.get(key, default)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(key, f"expected {kind.__name__}, got {value!r}")
        return value


def _sources(where: _Where, raw: Any, entity: tuple[str, ...]) -> dict[str, Source]:
    if not isinstance(raw, Mapping):
        where.fail("sources", f"expected a mapping of source name to contract, got {raw!r}")
    sources = {}
    for name, value in raw.items():
        key = f"sources.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            where.fail(key, "a source name must match [a-z][a-z0-9_]*")
        spec = value if isinstance(value, Mapping) else {"contract": value}
        where.unknown(spec, ("contract", "lookup"), key)
        contract = where.contract(spec.get("contract"), f"{key}.contract")
        lookup = where.typed(spec, "lookup", bool, False)
        _check_source(where, key, name, contract, entity, lookup)
        sources[name] = Source(name, contract, lookup)
    return sources


def _check_source(
    where: _Where, key: str, name: str, contract: Contract, entity: tuple[str, ...], lookup: bool
) -> None:
    problems: list[tuple[bool, str]] = [
        (contract.name != name, f"{contract.path}: contract name '{contract.name}' != '{name}'"),
        (contract.format is None, f"{contract.path}: a source contract needs 'format'"),
        (not contract.file_glob, f"{contract.path}: a source contract needs 'file_glob'"),
        (not contract.keys, f"{contract.path}: a source contract needs 'keys' (for dedup)"),
    ]
    for failed, message in problems:
        if failed:
            where.fail(key, message)
    missing = [c for c in entity if c not in contract.column_names]
    if missing and not lookup:
        where.fail(
            key,
            f"{contract.path}: entity column '{missing[0]}' is not a column of source "
            f"'{name}' (a source without the entity key needs 'lookup: true')",
        )


def _features(where: _Where, raw: dict[str, Any], entity: tuple[str, ...]) -> FeaturesSpec:
    where.unknown(raw, ("python", "sql", "table", "contract", "as_of_column"), "features")
    given = [k for k in ("python", "sql", "table") if raw.get(k) is not None]
    if len(given) != 1:
        where.fail("features", f"exactly one of python, sql, table is needed, got {given}")
    contract = None
    if raw.get("contract") is not None:
        contract = where.contract(raw["contract"], "features.contract")
    if given[0] == "table":
        table = where.text(raw, "table", "features")
        as_of = where.text(raw, "as_of_column", "features", default=AS_OF_DATE)
        if contract is not None:
            _check_features_contract(where, contract, entity, allow=(as_of,))
        return FeaturesSpec(contract, table=table, as_of_column=as_of)
    if "as_of_column" in raw:
        where.fail(
            "features.as_of_column", "only for features.table (built features get as_of_date)"
        )
    if contract is None:
        where.fail("features.contract", "missing (the columns the feature code must return)")
    _check_features_contract(where, contract, entity, allow=())
    if given[0] == "python":
        return FeaturesSpec(contract, python=where.code(raw, "python", "features"))
    return FeaturesSpec(contract, sql=where.file(raw["sql"], "features.sql"))


def _check_features_contract(
    where: _Where, contract: Contract, entity: tuple[str, ...], allow: tuple[str, ...]
) -> None:
    for column in entity:
        if column not in contract.column_names:
            where.fail("features.contract", f"{contract.path}: entity column '{column}' missing")
    for column in (AS_OF_DATE, FEATURE_RUN_ID):
        if column in contract.column_names and column not in allow:
            where.fail(
                "features.contract",
                f"{contract.path}: '{column}' is added by the engine; remove it from the contract",
            )


def _model(where: _Where, raw: dict[str, Any]) -> ModelSpec:
    known = (
        "name",
        "alias",
        "task",
        "skops_trusted_types",
        "positive_class",
        "threshold",
        "allow_pickled_code",
        "shadow",
    )
    where.unknown(raw, known, "model")
    task = where.text(raw, "task", "model")
    if task not in TASKS:
        where.fail("model.task", f"'{task}' is not one of {list(TASKS)}")
    trusted = raw.get("skops_trusted_types") or []
    if not isinstance(trusted, list) or not all(isinstance(t, str) and t for t in trusted):
        where.fail("model.skops_trusted_types", f"expected a list of type names, got {trusted!r}")
    if task != "binary":
        for key in ("positive_class", "threshold"):
            if key in raw:
                where.fail(f"model.{key}", f"only for task binary, not {task}")
    threshold = raw.get("threshold", 0.5)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 < threshold < 1
    ):
        where.fail("model.threshold", f"expected a number between 0 and 1, got {threshold!r}")
    allow = raw.get("allow_pickled_code", False)
    if not isinstance(allow, bool):
        where.fail("model.allow_pickled_code", f"expected true or false, got {allow!r}")
    positive = raw.get("positive_class", 1)
    if isinstance(positive, bool) or not isinstance(positive, int | str):
        where.fail("model.positive_class", f"expected a class label, got {positive!r}")
    alias = where.text(raw, "alias", "model", pattern=_NAME, default="champion")
    return ModelSpec(
        name=where.text(raw, "name", "model", pattern=_MODEL_NAME, hint="letters, digits, _ . -"),
        alias=alias,
        task=task,
        skops_trusted_types=tuple(trusted),
        positive_class=str(positive),
        threshold=float(threshold),
        allow_pickled_code=allow,
        shadow=_shadow(where, raw.get("shadow"), alias),
    )


def _scoring(where: _Where, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The use case's `scoring` overrides; their values are checked with the config's."""
    scoring = where.mapping(raw, "scoring", required=False)
    where.unknown(scoring, USECASE_SCORING_KEYS, "scoring")
    return scoring


def _shadow(where: _Where, raw: Any, alias: str) -> tuple[str, ...]:
    """`model.shadow`: distinct alias names, never the serving alias itself."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(a, str) and _NAME.match(a) for a in raw):
        where.fail("model.shadow", f"expected a list of alias names ([a-z][a-z0-9_]*), got {raw!r}")
    if len(set(raw)) != len(raw):
        where.fail("model.shadow", f"expected distinct aliases, got {raw!r}")
    if alias in raw:
        where.fail(
            "model.shadow",
            f"'{alias}' is the serving alias (model.alias): a shadow is another alias",
        )
    return tuple(raw)


def _labels(
    where: _Where, raw: Any, sources: Mapping[str, Source], entity: tuple[str, ...]
) -> LabelsSpec | None:
    if raw is None:
        return None
    where.unknown(raw, ("source", "as_of", "outcome"), "labels")
    name = where.text(raw, "source", "labels")
    if name not in sources:
        where.fail("labels.source", f"'{name}' is not a source of the use case ({sorted(sources)})")
    columns = sources[name].contract.column_names
    missing = [c for c in entity if c not in columns]
    if missing:
        where.fail("labels.source", f"source '{name}' lacks entity column '{missing[0]}'")
    labels = LabelsSpec(
        name, where.text(raw, "as_of", "labels"), where.text(raw, "outcome", "labels")
    )
    for key in ("as_of", "outcome"):
        column = getattr(labels, key)
        if column not in columns:
            where.fail(f"labels.{key}", f"'{column}' is not a column of source '{name}'")
    return labels


def _retrain(where: _Where, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The `retrain:` overrides, keys checked (YAML 1.1 reads a bare `on:` key as true)."""
    given = where.mapping(raw, "retrain", required=False)
    section = {("on" if k is True else str(k)): v for k, v in given.items()}
    if section:
        where.unknown(section, _RETRAIN_KEYS, "retrain")
    return section


def _train(where: _Where, raw: Any) -> TrainSpec | None:
    if raw is None:
        return None
    where.unknown(raw, ("python", "label", "horizon_days"), "train")
    horizon = raw.get("horizon_days", 0)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
        where.fail("train.horizon_days", f"expected an integer >= 0, got {horizon!r}")
    return TrainSpec(
        fit=where.code(raw, "python", "train"),
        label=where.code(raw, "label", "train"),
        horizon_days=horizon,
    )
