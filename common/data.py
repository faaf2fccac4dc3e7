"""Branch data: loading, the label set, the train/held-out split, partitioning
over branches, and tokenization.

Sources are the seeded synthetic generators (``data.source = "synthetic"``:
messages for ``task = intent``, applicants for ``credit``, transactions for
``fraud``) or a user's CSV/JSONL with the columns named in config: the text
column (intent) or the record's field columns (credit, fraud; every column
but the label by default), and the label column.  Everything here is
deterministic for a seed, so every node derives the same data without
talking to the others.

* **Synthetic, in simulation**: a node makes only what it uses.  Branch ``p``'s
  records come from its own random stream, derived from ``(seed, p)``
  (:func:`synthetic_branch`), and the server's held-out set from a stream of
  its own (:func:`synthetic_held_out`), so a branch's data costs O(its own
  size) whatever ``num-branches`` is.  A branch's size and label mix follow
  the marginals of the Dirichlet partition :func:`partition` makes of a fixed
  corpus (:func:`synthetic_branch_labels`); the held-out set is
  ``data.test-fraction`` of the corpus the federation's records would make,
  at most :data:`HELD_OUT_CAP` rows (:func:`held_out_size`).
* **CSV/JSONL** (a fixed corpus): every node loads the same file, splits it
  train/held-out and partitions the training rows over ``num-branches``
  (:func:`file_split`); the parsed file and its split are kept per process,
  one file at a time, so a worker that trains many branches parses it once.
  In deployment a branch reads only its own file (``data-path`` in its node
  config).

Desensitization (and, for records, serialization to text: :mod:`common.tabular`)
happens between loading and tokenization, at the branch.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
from collections.abc import Iterator
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

    def batches(self, batch_size: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(input_ids, attention_mask, labels)`` in order, each batch cut by :func:`trim_padding`, on ``device``."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            cut = trim_padding(self.input_ids[sl], self.attention_mask[sl], self.labels[sl])
            yield tuple(t.to(device) for t in cut)


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


# --------------------------------------------------------------------------- synthetic data, one stream per node

#: Most rows of the synthetic held-out set: it is data.test-fraction of the federation's corpus up to this
#: many rows, so the server's data and its evaluation per round stop growing with num-branches.
HELD_OUT_CAP = 2000
#: Fewest training rows a branch gets (:func:`partition`'s ``min_size``).
MIN_BRANCH_ROWS = 2
#: Concentration of :func:`partition`'s iid branch sizes (Dirichlet(5) shares of the pool).
IID_CONCENTRATION = 5.0


def derived_stream(seed: int, *parts: str | int) -> random.Random:
    """A random stream of its own for ``parts`` (``("branch", 3)``, ``("held-out",)``) under the run seed.

    SHA-256 of the seed and the parts seeds Python's ``random.Random``: the
    same on every node and process (no hash randomization), and independent
    of every other part's stream.
    """
    digest = hashlib.sha256(json.dumps([int(seed), *parts]).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def synthetic_priors(cfg: RunConfig) -> dict[str, float]:
    """Each label of the synthetic generator of ``cfg``'s task and its share of the generator's records.

    intent: the :data:`common.synthetic.INTENTS`, uniform; credit: ``bad`` 30 %;
    fraud: ``fraud`` 1 % (:data:`common.tabular_synthetic.BAD_RATE`, ``FRAUD_RATE``);
    chat: the dialogue :data:`common.dialogue_synthetic.TOPICS`, uniform.
    """
    from common.tasks import task_of

    task = task_of(cfg)
    if task.name == "intent":
        from common.synthetic import INTENTS

        return {label: 1.0 / len(INTENTS) for label in INTENTS}
    if task.name == "chat":
        from common.dialogue_synthetic import TOPICS

        return {topic: 1.0 / len(TOPICS) for topic in TOPICS}
    if task.name not in ("credit", "fraud"):
        raise DataError(f"task '{task.name}' has no synthetic record generator here: set data.source to a CSV/JSONL file")
    from common.tabular_synthetic import BAD_RATE, FRAUD_RATE

    rate = FRAUD_RATE if task.name == "fraud" else BAD_RATE
    negative, positive = task.synthetic_labels
    return {negative: 1.0 - rate, positive: rate}


def _stochastic_round(rng: random.Random, x: float) -> int:
    """``floor(x)`` or ``floor(x) + 1``, the latter with probability ``x - floor(x)`` (unbiased)."""
    whole = math.floor(x)
    return int(whole) + (rng.random() < x - whole)


def synthetic_branch_labels(cfg: RunConfig, rng: random.Random) -> list[str]:
    """The labels of one simulated branch's synthetic records, drawn from the branch's own stream ``rng``.

    The federation's synthetic training pool is ``records-per-branch x
    num-branches`` rows at the generator's label shares
    (:func:`synthetic_priors`).  :func:`partition` would cut such a pool into
    branches with symmetric Dirichlet shares; here each branch draws its own
    share from the *marginal* of that Dirichlet over ``N = num-branches``
    branches, Beta(c, c(N - 1)) (exactly 1 when N = 1), so no node needs the
    others' data:

    * ``iid``: one share of the whole pool (c = 5, :func:`partition`'s iid
      sizes), labels drawn at the generator's shares;
    * ``dirichlet``: for each label its own share (c = ``data.dirichlet-alpha``)
      of that label's rows of the pool: the label skew of :func:`partition`.

    Counts are rounded stochastically (a branch's expected size is
    records-per-branch); a branch with fewer than :data:`MIN_BRANCH_ROWS` rows
    draws again from its stream, as :func:`partition` retries.  Not kept: the
    shares of all branches summing to one -- branches draw independently, so
    the federation's total varies around the pool's size.  Returned shuffled.

    Raises:
        DataError: records-per-branch is below :data:`MIN_BRANCH_ROWS`, or 200
            draws in a row gave the branch too few rows (a tiny dirichlet-alpha).
    """
    n_branches = cfg.federation.num_branches
    pool = cfg.data.records_per_branch * n_branches
    if pool < n_branches * MIN_BRANCH_ROWS:
        raise DataError(f"{pool} training examples cannot give each of {n_branches} branches {MIN_BRANCH_ROWS} rows (a branch would be empty or nearly so): use fewer branches (--branches / num-branches) or more data")
    priors = synthetic_priors(cfg)
    names = list(priors)

    def share(c: float) -> float:
        return 1.0 if n_branches == 1 else rng.betavariate(c, c * (n_branches - 1))

    for _ in range(200):
        if cfg.data.partition == "iid":
            size = _stochastic_round(rng, pool * share(IID_CONCENTRATION))
            labels = rng.choices(names, weights=[priors[n] for n in names], k=size)
        else:
            alpha = cfg.data.dirichlet_alpha
            labels = [name for name in names for _ in range(_stochastic_round(rng, pool * priors[name] * share(alpha)))]
        if len(labels) >= MIN_BRANCH_ROWS:
            rng.shuffle(labels)
            return labels
    raise DataError(f"could not give a branch at least {MIN_BRANCH_ROWS} synthetic rows in 200 draws: raise data.dirichlet-alpha or data.records-per-branch")


def held_out_size(cfg: RunConfig) -> int:
    """Rows of the synthetic held-out set.

    The rule: ``data.test-fraction`` of the corpus that the federation's
    ``records-per-branch x num-branches`` training rows would be the rest of
    (``round(ceil(train / (1 - test-fraction)) x test-fraction)``, at least 1,
    as the whole-corpus split held out), capped at :data:`HELD_OUT_CAP`.
    Small federations get what they always got; from about
    ``HELD_OUT_CAP x (1 - f) / f`` training rows on (8,000 at f = 0.2) the
    held-out set stays at the cap, whatever ``num-branches`` is.
    """
    train_n = cfg.data.records_per_branch * cfg.federation.num_branches
    total = math.ceil(train_n / (1 - cfg.data.test_fraction))
    return min(max(1, int(round(total * cfg.data.test_fraction))), HELD_OUT_CAP)


def synthetic_held_out_labels(cfg: RunConfig, n: int, rng: random.Random) -> list[str]:
    """``n`` held-out labels at the generator's shares, stratified (largest remainder), shuffled with ``rng``.

    A binary task keeps at least one row of each class when ``n >= 2`` (as the
    stratified split of the whole corpus did), so ROC/PR metrics exist.
    """
    priors = synthetic_priors(cfg)
    names = list(priors)
    exact = [n * priors[name] for name in names]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    if len(names) == 2 and n >= 2:
        for i in range(2):
            if counts[i] == 0:
                counts[i], counts[1 - i] = 1, counts[1 - i] - 1
    labels = [name for name, count in zip(names, counts) for _ in range(count)]
    rng.shuffle(labels)
    return labels


def _generate(cfg: RunConfig, labels: list[str], rng: random.Random, tag: str) -> list:
    """The generator's records of ``labels`` (in that order), drawn from ``rng`` (chat: dialogues of those topics)."""
    if cfg.task.name == "chat":
        from common.dialogue_synthetic import generate_labelled_dialogues

        return generate_labelled_dialogues(labels, rng, zh_fraction=cfg.data.zh_fraction)
    if cfg.task.name == "intent":
        from common.synthetic import generate_labelled_records

        return generate_labelled_records(labels, rng, zh_fraction=cfg.data.zh_fraction)
    from common.tabular_synthetic import generate_labelled

    return generate_labelled(cfg.task.name, labels, rng, zh_fraction=cfg.data.zh_fraction, id_tag=tag)


def synthetic_branch_rows(cfg: RunConfig, partition_id: int) -> list:
    """Branch ``partition_id``'s generator records, with their answer keys (planted PII), from its own stream.

    ``SyntheticRecord`` (intent) or ``TabularRecord`` (credit, fraud); cost
    O(the branch's own rows), independent of ``num-branches``.
    """
    rng = derived_stream(cfg.federation.seed, "branch", int(partition_id))
    return _generate(cfg, synthetic_branch_labels(cfg, rng), rng, f"b{int(partition_id)}")


def synthetic_held_out_rows(cfg: RunConfig) -> list:
    """The server's synthetic held-out records (:func:`held_out_size` of them), from a stream of their own."""
    rng = derived_stream(cfg.federation.seed, "held-out")
    return _generate(cfg, synthetic_held_out_labels(cfg, held_out_size(cfg), rng), rng, "h")


def rows_corpus(cfg: RunConfig, rows: list) -> Corpus:
    """Generator records as a :class:`Corpus` (texts for intent, records for credit/fraud)."""
    if cfg.task.name == "intent":
        return Corpus([r.text for r in rows], [r.label for r in rows])
    return Corpus([None] * len(rows), [r.label for r in rows], [dict(r.fields) for r in rows])


def synthetic_branch(cfg: RunConfig, partition_id: int) -> Corpus:
    """Branch ``partition_id``'s synthetic training corpus (see :func:`synthetic_branch_rows`)."""
    return rows_corpus(cfg, synthetic_branch_rows(cfg, partition_id))


def synthetic_held_out(cfg: RunConfig) -> Corpus:
    """The server's synthetic held-out corpus.

    Raises:
        DataError: a binary task's held-out set lacks a class (a held-out set of one row).
    """
    test = rows_corpus(cfg, synthetic_held_out_rows(cfg))
    _check_binary_held_out(cfg, test, label_names(cfg))
    return test


def _concat_all(corpora: list[Corpus], records: bool) -> Corpus:
    texts = [t for c in corpora for t in c.texts]
    labels = [label for c in corpora for label in c.labels]
    if not records:
        return Corpus(texts, labels)
    return Corpus(texts, labels, [r for c in corpora for r in (c.records if c.records is not None else [None] * len(c))])


def synthetic_corpus(cfg: RunConfig) -> Corpus:
    """Every simulated branch's synthetic records (branch 0 first), then the held-out set.

    O(num-branches): for tools that need the whole federation at once; a node
    makes only its own part (:func:`partition_corpus`, :func:`holdout_corpus`).
    """
    train, test, _, _ = simulation_split(cfg)
    return _concat_all([train, test], records=train.records is not None)


# --------------------------------------------------------------------------- a fixed corpus (CSV/JSONL)

# (key, (train, held-out, parts, names)) of the last file split in this process: one entry, so memory stays bounded.
_FILE_SPLIT: tuple[tuple, tuple] | None = None


def file_split(cfg: RunConfig) -> tuple[Corpus, Corpus, list[np.ndarray], list[str]]:
    """(train, held-out, per-branch train indices, label names) of the CSV/JSONL ``data.source``.

    Cached per process, one file at a time, keyed by the file's content
    (SHA-256) and every setting the split depends on: a Ray worker that trains
    many branches parses and splits the file once.  The returned corpora are
    shared: treat them as read-only (``subset`` makes copies).
    """
    global _FILE_SPLIT
    from common.tasks import check_task, task_of

    check_task(cfg)
    path = _check_file(cfg.data.source)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"cannot read data file '{path}': {err.strerror or err}; check that it is a readable file") from err
    fed = cfg.federation
    key = (str(path.resolve()), digest, cfg.data, cfg.task, fed.seed, fed.num_branches, tuple(read_labels(cfg.data.labels) or ()))
    if _FILE_SPLIT is not None and _FILE_SPLIT[0] == key:
        return _FILE_SPLIT[1]
    _FILE_SPLIT = None  # let the previous corpus go before loading this one
    corpus = load_file(cfg, path)
    names = label_names(cfg, corpus)
    binary = task_of(cfg).binary
    train_idx, test_idx = train_test_split(len(corpus), cfg.data.test_fraction, fed.seed,
                                           stratify=corpus.labels if binary else None)
    train, test = corpus.subset(train_idx), corpus.subset(test_idx)
    _check_binary_held_out(cfg, test, names)
    parts = partition(train.labels, fed.num_branches, cfg.data.partition, cfg.data.dirichlet_alpha, fed.seed)
    value = (train, test, parts, names)
    _FILE_SPLIT = (key, value)
    return value


def _check_binary_held_out(cfg: RunConfig, test: Corpus, names: list[str]) -> None:
    from common.tasks import task_of

    if task_of(cfg).binary and not set(names) <= set(test.labels):
        missing = sorted(set(names) - set(test.labels))
        raise DataError(f"the held-out evaluation set has no {missing[0]!r} rows ({len(test)} rows held out), so ROC/PR "
                        "metrics cannot be computed: use more data (data.records-per-branch for synthetic) or raise data.test-fraction")


# --------------------------------------------------------------------------- what each node loads


def load_corpus(cfg: RunConfig) -> Corpus:
    """The full corpus named by ``data.source`` (synthetic: :func:`synthetic_corpus`, the whole federation)."""
    if cfg.data.source == SYNTHETIC:
        return synthetic_corpus(cfg)
    return load_file(cfg, cfg.data.source)


def partition_corpus(cfg: RunConfig, partition_id: int) -> tuple[Corpus, list[str]]:
    """Simulated branch ``partition_id``'s training records and the run's label set.

    Synthetic: made from the branch's own stream (O(its rows)); a file: its
    part of the (cached) split.

    Raises:
        DataError: ``partition_id`` is not below ``num-branches``, or as :func:`simulation_split`.
    """
    n_branches = cfg.federation.num_branches
    if not 0 <= partition_id < n_branches:
        raise DataError(f"partition-id {partition_id} but num-branches is {n_branches}: set num-branches to the number of SuperNodes")
    if cfg.data.source == SYNTHETIC:
        from common.tasks import check_task

        check_task(cfg)
        return synthetic_branch(cfg, partition_id), label_names(cfg)
    train, _, parts, names = file_split(cfg)
    return train.subset(parts[partition_id]), names


def holdout_corpus(cfg: RunConfig) -> tuple[Corpus, list[str]]:
    """The server's held-out corpus and the run's label set.

    Synthetic: made from its own stream (:func:`held_out_size` rows, whatever
    ``num-branches``); a file: the held-out part of the (cached) split.

    Raises:
        DataError: a label is outside the run's label set, or (a file) a
            held-out label occurs in no training row: its metrics would mean nothing.
    """
    if cfg.data.source == SYNTHETIC:
        from common.tasks import check_task

        check_task(cfg)
        names = label_names(cfg)
        test = synthetic_held_out(cfg)
        check_label_coverage(Corpus([], []), test, names, require_trained=False)
        return test, names
    train, test, _, names = file_split(cfg)
    check_label_coverage(train, test, names, require_trained=True)
    return test, names


def simulation_split(cfg: RunConfig) -> tuple[Corpus, Corpus, list[np.ndarray], list[str]]:
    """The whole simulated federation: (train corpus, held-out corpus, per-branch train indices, label names).

    For tools that need every branch at once (deployment's per-branch files,
    preflight checks, tests): branch ``p``'s rows are ``train.subset(parts[p])``,
    equal to :func:`partition_corpus`'s.  Synthetic: O(num-branches) -- every
    branch's stream, concatenated in order; a file: :func:`file_split`.
    """
    if cfg.data.source != SYNTHETIC:
        return file_split(cfg)
    from common.tasks import check_task

    check_task(cfg)
    names = label_names(cfg)
    branches = [synthetic_branch(cfg, p) for p in range(cfg.federation.num_branches)]
    test = synthetic_held_out(cfg)
    parts, start = [], 0
    for corpus in branches:
        parts.append(np.arange(start, start + len(corpus)))
        start += len(corpus)
    return _concat_all(branches, records=cfg.task.name != "intent"), test, parts, names


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


def trim_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """A batch without its trailing columns that are padding in every row.

    Exact for any model whose outputs at real positions ignore masked later
    positions (a bidirectional encoder with its attention mask, a causal
    LM): sets are padded to ``model.max-length``, most messages are much
    shorter, and the cost of a step grows with the padded length.  Token
    labels (a causal LM's, 2-D) are cut with the inputs.
    """
    used = attention_mask.any(dim=0).nonzero()
    length = int(used[-1]) + 1 if len(used) else 1
    if length >= input_ids.shape[1]:
        return input_ids, attention_mask, labels
    if labels.dim() == 2:
        labels = labels[:, :length]
    return input_ids[:, :length], attention_mask[:, :length], labels


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
