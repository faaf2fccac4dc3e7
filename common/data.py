"""Branch data: loading, the label set, the train/held-out split, partitioning
over branches, and tokenization.

Sources are the seeded synthetic generators (``data.source = "synthetic"``:
messages for ``task = intent``, applicants for ``credit``, transactions for
``fraud``) or a user's CSV/JSONL with the columns named in config: the text
column (intent) or the record's field columns (credit, fraud; every column
but the label by default), and the label column.  In
simulation every node loads the same corpus and keeps its own partition
(``partition-id``); in deployment a branch reads only its own file
(``data-path`` in its node config).  Everything here is deterministic for a
seed, so every node derives the same split without talking to the others.
Desensitization (and, for records, serialization to text: :mod:`common.tabular`)
happens between loading and tokenization, at the branch.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.config import RunConfig, read_labels
from common.errors import DataError

if TYPE_CHECKING:
    import torch

SYNTHETIC = "synthetic"


@dataclass
class Corpus:
    """Raw examples with string labels.

    Attributes:
        texts: the raw text of each example (intent); ``None`` for a record row.
        labels: the label of each example.
        records: for the record tasks (credit, fraud), each example's raw
            fields (column -> value, the label column excluded), serialized to
            text only after desensitization at the branch; a ``None`` entry is a
            plain-text row (the audit's canaries).  ``None`` for a text corpus.
    """

    texts: list[str | None]
    labels: list[str]
    records: list[dict[str, str] | None] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "Corpus":
        """The examples at positions ``idx``."""
        records = None if self.records is None else [self.records[i] for i in idx]
        return Corpus([self.texts[i] for i in idx], [self.labels[i] for i in idx], records)

    def concat(self, other: "Corpus") -> "Corpus":
        """This corpus followed by ``other`` (records kept; a text row of either side has record ``None``)."""
        if self.records is None and other.records is None:
            return Corpus(self.texts + other.texts, self.labels + other.labels)
        mine = self.records if self.records is not None else [None] * len(self)
        theirs = other.records if other.records is not None else [None] * len(other)
        return Corpus(self.texts + other.texts, self.labels + other.labels, mine + theirs)


@dataclass
class TokenizedSet:
    """Tokenized examples ready for a model."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def as_dataset(self) -> torch.utils.data.TensorDataset:
        """A ``TensorDataset`` of (input_ids, attention_mask, labels)."""
        import torch.utils.data

        return torch.utils.data.TensorDataset(self.input_ids, self.attention_mask, self.labels)


def load_table(path: str | Path, text_column: str, label_column: str, max_rows: int = 0) -> Corpus:
    """Read a CSV or JSONL file of labelled texts.

    Raises:
        DataError: the file is missing, unreadable or malformed, a column is
            missing, or it has no rows.  The message is one line naming the
            file (and line) and the fix.
    """
    path = _check_file(path)
    columns = (text_column, label_column)
    rows = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv(path, columns)
    texts, labels = [], []
    try:
        for lineno, row in rows:
            _require_columns(path, lineno, row, {text_column: "data.text-column", label_column: "data.label-column"})
            text, label = row[text_column], row[label_column]
            if text is None or label is None or str(label).strip() == "":
                raise DataError(f"{path}:{lineno}: empty text or label; remove or fill the row")
            texts.append(str(text))
            labels.append(str(label).strip())
            if max_rows and len(texts) >= max_rows:
                break
    except OSError as err:
        raise DataError(f"cannot read data file '{path}': {err.strerror or err}; check that it is a readable file") from err
    if not texts:
        raise DataError(f"data file '{path}' has no rows: give a file with a header and at least one example")
    return Corpus(texts, labels)


_COLUMN_FIX = "set data.text-column / data.label-column (--text-column / --label-column) to the file's columns"


def load_records(path: str | Path, label_column: str, columns: dict[str, str] | None = None, max_rows: int = 0) -> Corpus:
    """Read a CSV or JSONL file of labelled records (credit, fraud).

    Each row's fields, all but ``label_column``, become a record; values are
    kept as text (JSON numbers as written).  ``columns`` maps every column the
    run's mapping names to the config key naming it
    (``{"Age": "data.field-columns"}``): each must exist.

    Raises:
        DataError: as :func:`load_table`; a missing mapped column names its config key.
    """
    path = _check_file(path)
    required = {label_column: "data.label-column", **(columns or {})}
    rows = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv(path, required)
    records: list[dict[str, str] | None] = []
    labels: list[str] = []
    try:
        for lineno, row in rows:
            _require_columns(path, lineno, row, required)
            label = row[label_column]
            if label is None or str(label).strip() == "":
                raise DataError(f"{path}:{lineno}: empty label in column '{label_column}'; remove or fill the row")
            records.append({str(k): "" if v is None else (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v))
                            for k, v in row.items() if k != label_column})
            labels.append(str(label).strip())
            if max_rows and len(labels) >= max_rows:
                break
    except OSError as err:
        raise DataError(f"cannot read data file '{path}': {err.strerror or err}; check that it is a readable file") from err
    if not labels:
        raise DataError(f"data file '{path}' has no rows: give a file with a header and at least one record")
    return Corpus([None] * len(labels), labels, records)


def _check_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"data file '{path}' is a directory: set data.source (or the branch's data-path) to a CSV or JSONL file")
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist: set data.source (or the branch's data-path) to a CSV or JSONL file")
    return path


def _require_columns(path: Path, lineno: int, row: dict, required: dict[str, str]) -> None:
    """Raise a one-line DataError for the first column of ``required`` (column -> config key) missing from ``row``."""
    for col, key in required.items():
        if col not in row:
            cols = ", ".join(sorted(map(str, row))) or "none"
            raise DataError(f"{path}:{lineno}: no column '{col}' (columns: {cols}); {_column_fix(key)}")


def _column_fix(key: str) -> str:
    if key in ("data.text-column", "data.label-column"):
        return _COLUMN_FIX
    return f"it is named in {key}: set {key} to columns of the file"


def _read_csv(path: Path, columns: tuple[str, ...] | dict[str, str] = ()):
    reader = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a BOM is not part of the first column name
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise DataError(f"CSV file '{path}' has no header row: add a header naming the columns")
            width = len(reader.fieldnames)
            keys = columns if isinstance(columns, dict) else dict.fromkeys(columns, "data.text-column")
            for col, key in keys.items():
                if col not in reader.fieldnames:
                    cols = ", ".join(sorted(str(c) for c in reader.fieldnames))
                    raise DataError(f"CSV file '{path}' has no column '{col}' (columns: {cols}); {_column_fix(key)}")
            for lineno, row in enumerate(reader, start=2):
                if None in row or len(row) != width or any(v is None for v in row.values()):
                    raise DataError(f"{path}:{reader.line_num}: malformed CSV row (expected {width} fields); check quoting and separators")
                yield lineno, row
    except UnicodeDecodeError as err:
        raise DataError(f"CSV file '{path}' is not UTF-8 text: re-save it as UTF-8 CSV") from err
    except csv.Error as err:
        where = f"{path}:{reader.line_num}" if reader is not None and reader.line_num else f"CSV file '{path}'"
        raise DataError(f"{where}: malformed CSV ({err}); check quoting and separators") from err


def _read_jsonl(path: Path):
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg}); one JSON object per line") from err
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object per line")
                yield lineno, row
    except UnicodeDecodeError as err:
        raise DataError(f"JSONL file '{path}' is not UTF-8 text: re-save it as UTF-8") from err


def synthetic_corpus(cfg: RunConfig) -> Corpus:
    """The generator's corpus of ``cfg``'s task for the whole simulated federation (train + held-out)."""
    train_n = cfg.data.records_per_branch * cfg.federation.num_branches
    total = math.ceil(train_n / (1 - cfg.data.test_fraction))
    if cfg.task.name == "intent":
        from common.synthetic import generate_records

        records = generate_records(total, seed=cfg.federation.seed, zh_fraction=cfg.data.zh_fraction)
        return Corpus([r.text for r in records], [r.label for r in records])
    from common.tabular_synthetic import generate_applicants, generate_transactions

    make = generate_applicants if cfg.task.name == "credit" else generate_transactions
    rows = make(total, seed=cfg.federation.seed, zh_fraction=cfg.data.zh_fraction)
    return Corpus([None] * len(rows), [r.label for r in rows], [dict(r.fields) for r in rows])


def label_names(cfg: RunConfig, corpus: Corpus | None = None) -> list[str]:
    """The run's label set, identical on every node.

    Binary tasks (credit, fraud): ``[negative, positive]`` (see
    :func:`common.tasks.binary_label_names`).  Intent: ``data.labels`` if
    given; the generator's intents for synthetic data; else the sorted labels
    found in ``corpus``.
    """
    from common.tasks import binary_label_names, task_of

    task = task_of(cfg)
    if task.binary:
        if cfg.data.source == SYNTHETIC and not read_labels(cfg.data.labels):
            return list(task.synthetic_labels)
        if corpus is None and not read_labels(cfg.data.labels):
            raise DataError("data.labels is empty and there is no corpus to read labels from: set data.labels")
        return binary_label_names(cfg, corpus.labels if corpus is not None else None)
    explicit = read_labels(cfg.data.labels)
    if explicit:
        return explicit
    if cfg.data.source == SYNTHETIC:
        from common.synthetic import INTENTS

        return list(INTENTS)
    if corpus is None:
        raise DataError("data.labels is empty and there is no corpus to read labels from: set data.labels")
    return sorted(set(corpus.labels))


def load_file(cfg: RunConfig, path: str | Path) -> Corpus:
    """A CSV/JSONL file read with the run's column mapping (texts for intent, records for credit/fraud)."""
    from common.tasks import check_task, task_of

    check_task(cfg)
    if not task_of(cfg).tabular:
        return load_table(path, cfg.data.text_column, cfg.data.label_column, cfg.data.max_rows)
    named = {c: "data.field-columns" for c in cfg.task.field_list or ()}
    named.update({c: "data.id-columns" for c in cfg.task.id_list})
    named.update({c: "data.quasi-columns" for c in (cfg.task.quasi_rules or {})})
    return load_records(path, cfg.data.label_column, named, cfg.data.max_rows)


def load_corpus(cfg: RunConfig) -> Corpus:
    """The full corpus named by ``data.source``."""
    if cfg.data.source == SYNTHETIC:
        from common.tasks import check_task

        check_task(cfg)
        return synthetic_corpus(cfg)
    return load_file(cfg, cfg.data.source)


def train_test_split(n: int, test_fraction: float, seed: int, stratify: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into train and held-out indices.

    With ``stratify`` (the labels; used for the binary tasks) the split keeps
    each label's share in both parts (scikit-learn's stratified split), so a
    1 % fraud class still reaches the held-out set; it falls back to the plain
    split when a label has fewer than two rows.
    """
    n_test = max(1, int(round(n * test_fraction)))
    if stratify is not None:
        counts = np.unique(np.asarray(stratify), return_counts=True)[1]
        if len(counts) > 1 and counts.min() >= 2 and len(counts) <= n_test <= n - len(counts):
            from sklearn.model_selection import StratifiedShuffleSplit

            splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed % (2**32))
            train, test = next(splitter.split(np.zeros(n), np.asarray(stratify)))
            return np.sort(train), np.sort(test)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def partition(labels: list[str], num_parts: int, method: str, alpha: float, seed: int, min_size: int = 2) -> list[np.ndarray]:
    """Split example indices over ``num_parts`` branches, of unequal sizes.

    ``iid``: a random permutation cut at Dirichlet(5)-distributed sizes.
    ``dirichlet``: for each label, its examples are spread over branches in
    Dirichlet(alpha) proportions (label skew, the usual non-IID benchmark).
    Retries with the next seed until every branch has ``min_size`` examples.
    """
    n = len(labels)
    if n < num_parts * min_size:
        raise DataError(f"{n} training examples cannot give each of {num_parts} branches {min_size} rows (a branch would be empty or nearly so): use fewer branches (--branches / num-branches) or more data")
    y = np.asarray(labels)
    for attempt in range(200):
        rng = np.random.default_rng(seed + 7919 * attempt)
        if method == "iid":
            props = rng.dirichlet(np.full(num_parts, 5.0))
            cuts = (np.cumsum(props)[:-1] * n).astype(int)
            parts = np.split(rng.permutation(n), cuts)
        else:
            buckets: list[list[int]] = [[] for _ in range(num_parts)]
            for label in np.unique(y):
                idx = rng.permutation(np.flatnonzero(y == label))
                cuts = (np.cumsum(rng.dirichlet(np.full(num_parts, alpha)))[:-1] * len(idx)).astype(int)
                for b, chunk in enumerate(np.split(idx, cuts)):
                    buckets[b].extend(chunk.tolist())
            parts = [np.asarray(b, dtype=int) for b in buckets]
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(p) for p in parts]
    raise DataError(f"could not partition {n} examples over {num_parts} branches with at least {min_size} each: raise data.dirichlet-alpha or use fewer branches")


def simulation_split(cfg: RunConfig) -> tuple[Corpus, Corpus, list[np.ndarray], list[str]]:
    """(train corpus, held-out corpus, per-branch train indices, label names)."""
    from common.tasks import task_of

    corpus = load_corpus(cfg)
    names = label_names(cfg, corpus)
    binary = task_of(cfg).binary
    train_idx, test_idx = train_test_split(len(corpus), cfg.data.test_fraction, cfg.federation.seed,
                                           stratify=corpus.labels if binary else None)
    train, test = corpus.subset(train_idx), corpus.subset(test_idx)
    if binary and not set(names) <= set(test.labels):
        missing = sorted(set(names) - set(test.labels))
        raise DataError(f"the held-out evaluation set has no {missing[0]!r} rows ({len(test)} rows held out), so ROC/PR "
                        "metrics cannot be computed: use more data (data.records-per-branch for synthetic) or raise data.test-fraction")
    parts = partition(train.labels, cfg.federation.num_branches, cfg.data.partition, cfg.data.dirichlet_alpha, cfg.federation.seed)
    return train, test, parts, names


def check_label_coverage(train: Corpus, test: Corpus, names: list[str], require_trained: bool = True) -> None:
    """Every label is in the run's label set, and (``require_trained``) every
    held-out label occurs in the training data.

    Raises:
        DataError: naming the first offending label and the fix.
    """
    known = set(names)
    for where, corpus in (("training data", train), ("held-out evaluation set", test)):
        unknown = sorted(set(corpus.labels) - known)
        if unknown:
            raise DataError(f"label {_show_labels(unknown)} in the {where} is not in the run's label set: add it to data.labels or remove its rows")
    unseen = sorted(set(test.labels) - set(train.labels)) if require_trained else []
    if unseen:
        unseen_set = set(unseen)
        count = sum(1 for label in test.labels if label in unseen_set)
        raise DataError(
            f"label {_show_labels(unseen)} is in the held-out evaluation set ({count} row(s)) but in no training row: "
            "add training rows with that label, remove its rows, or change seed / data.test-fraction"
        )


def _show_labels(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:5])
    return shown + (f" (and {len(labels) - 5} more)" if len(labels) > 5 else "")


def encode_labels(labels: list[str], names: list[str], where: str) -> torch.Tensor:
    """Label strings to indices; an unknown label is a DataError naming it."""
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown[:5]} are not in the run's label set; add them to data.labels")
    import torch  # lazily: loading and checking data needs no torch

    return torch.tensor([index[l] for l in labels], dtype=torch.long)


def tokenize(texts: list[str], labels: torch.Tensor, tokenizer, max_length: int) -> TokenizedSet:
    """Tokenize (pad and truncate to ``max_length``)."""
    enc = tokenizer(texts, max_length=max_length, padding="max_length", truncation=True, return_tensors="pt")
    return TokenizedSet(enc["input_ids"], enc["attention_mask"], labels)


def corpus_table(corpus: Corpus, text_column: str, label_column: str) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` that :func:`load_file` reads back as ``corpus`` (for writing a branch's own file).

    A text corpus gives ``[text_column, label_column]``; a record corpus its
    record columns (in first-seen order) then ``label_column``.
    """
    if corpus.records is None:
        return [text_column, label_column], [[t or "", l] for t, l in zip(corpus.texts, corpus.labels)]
    columns: list[str] = []
    for record in corpus.records:
        for column in record or {}:
            if column not in columns and column != label_column:
                columns.append(column)
    rows = [[(record or {}).get(c, "") for c in columns] + [label] for record, label in zip(corpus.records, corpus.labels)]
    return columns + [label_column], rows
