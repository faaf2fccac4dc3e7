"""Reading a user's CSV/JSONL data file into a :class:`common.data.corpus.Corpus`.

:func:`load_file` applies the run's column mapping: the text column
(intent), the record's field columns (credit, fraud; every column but the
label by default) or the prompt and reply columns (chat; the label column,
optional, is the dialogue's topic), and the label column.  Below it,
:func:`load_table` reads labelled texts and :func:`load_records` labelled
field records.  A missing or unreadable file, a malformed row, a missing or
repeated column or an empty file is a one-line :class:`common.errors.DataError`
naming the file (and line) and the fix.  Its ``public`` account, the only
text a branch sends HQ, holds no value of the file: not even the file's
column names, which are cells when the file has no header row -- only the
columns the run config names, and counts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.errors import DataError
from common.tasks.spec import Task


def load_file(cfg: RunConfig, task: Task, path: str | Path) -> Corpus:
    """A CSV/JSONL file read with the run's column mapping for ``task``."""
    t = cfg.task
    if task.generative:
        return load_dialogues(cfg, path)
    if not task.tabular:
        return load_table(path, cfg.data.text_column, cfg.data.label_column, cfg.data.max_rows)
    named = {c: "data.field-columns" for c in t.field_list or ()}
    named.update({c: "data.id-columns" for c in t.id_list})
    named.update({c: "data.quasi-columns" for c in (t.quasi_rules or {})})
    return load_records(path, cfg.data.label_column, named, cfg.data.max_rows)


def load_dialogues(cfg: RunConfig, path: str | Path) -> Corpus:
    """A CSV/JSONL file of dialogues: the prompt column's messages, the response column's replies, the label column's topics.

    Raises:
        DataError: the file or a column is missing, a row has an empty reply, or there are no rows.
    """
    t = cfg.task
    if t.prompt_column == t.response_column:
        raise DataError(f"data.prompt-column and data.response-column are both '{t.prompt_column}': "
                        "name the customer's message and the agent's reply columns")
    corpus = load_records(path, t.response_column, {t.prompt_column: "data.prompt-column", t.response_column: "data.response-column"},
                          cfg.data.max_rows)
    topic = cfg.data.label_column
    prompts = [(r or {}).get(t.prompt_column, "") for r in corpus.records]
    return Corpus(prompts, [(r or {}).get(topic, "") for r in corpus.records], responses=list(corpus.labels))


def load_table(path: str | Path, text_column: str, label_column: str, max_rows: int = 0) -> Corpus:
    """Read a CSV or JSONL file of labelled texts.

    Raises:
        DataError: the file is missing, unreadable or malformed, a column is
            missing, or it has no rows.  The message is one line naming the
            file (and line) and the fix.
    """
    path = check_file(path)
    columns = (text_column, label_column)
    rows = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv(path, columns)
    texts, labels = [], []
    for lineno, row in _checked_rows(path, rows, {text_column: "data.text-column", label_column: "data.label-column"},
                                     max_rows):
        text, label = row[text_column], row[label_column]
        if text is None or label is None or str(label).strip() == "":
            raise DataError(f"{path}:{lineno}: empty text or label; remove or fill the row",
                            public=f"data file line {lineno}: empty text or label; remove or fill the row")
        texts.append(str(text))
        labels.append(str(label).strip())
    if not texts:
        raise DataError(f"data file '{path}' has no rows: give a file with a header and at least one example",
                        public="the data file has no rows: give a file with a header and at least one example")
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
    path = check_file(path)
    required = {label_column: "data.label-column", **(columns or {})}
    rows = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv(path, required)
    records: list[dict[str, str] | None] = []
    labels: list[str] = []
    for lineno, row in _checked_rows(path, rows, required, max_rows):
        label = row[label_column]
        if label is None or str(label).strip() == "":
            raise DataError(f"{path}:{lineno}: empty label in column '{label_column}'; remove or fill the row",
                            public=f"data file line {lineno}: empty label in column '{label_column}'; remove or fill the row")
        records.append({str(k): "" if v is None else (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v))
                        for k, v in row.items() if k != label_column})
        labels.append(str(label).strip())
    if not labels:
        raise DataError(f"data file '{path}' has no rows: give a file with a header and at least one record",
                        public="the data file has no rows: give a file with a header and at least one record")
    return Corpus([None] * len(labels), labels, records)


def _checked_rows(path: Path, rows, required: dict[str, str], max_rows: int):
    """``(lineno, row)`` of each row, each holding the ``required`` columns, at most ``max_rows`` (0 = all).

    Raises:
        DataError: a missing column (naming its config key), or the file cannot be read.
    """
    try:
        for count, (lineno, row) in enumerate(rows, start=1):
            _require_columns(path, lineno, row, required)
            yield lineno, row
            if max_rows and count >= max_rows:
                return
    except OSError as err:
        raise DataError(f"cannot read data file '{path}': {err.strerror or err}; check that it is a readable file",
                        public="cannot read the data file; check that it is a readable file") from err


def check_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"data file '{path}' is a directory: set data.source (or the branch's data-path) to a CSV or JSONL file",
                        public="the data file is a directory: set data.source (or the branch's data-path) to a CSV or JSONL file")
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist: set data.source (or the branch's data-path) to a CSV or JSONL file",
                        public="the data file does not exist: set data.source (or the branch's data-path) to a CSV or JSONL file")
    return path


def _require_columns(path: Path, lineno: int, row: dict, required: dict[str, str]) -> None:
    """Raise a one-line DataError for the first column of ``required`` (column -> config key) missing from ``row``."""
    for col, key in required.items():
        if col not in row:
            cols = ", ".join(sorted(map(str, row))) or "none"
            raise DataError(f"{path}:{lineno}: no column '{col}' (columns: {cols}); {_column_fix(key)}",
                            public=f"data file line {lineno}: no column '{col}' ({len(row)} columns, their names in "
                                   f"the branch's own error log); {_column_fix(key)}")


def _check_header(path: Path, header: list[str], keys: dict[str, str]) -> None:
    """Each column the run names is in ``header`` once.

    The public account names only columns the run config names: a file
    without a header row has its first row of cells read as the header, so the
    file's own names are told as a count (the full error, with them, stays at the branch).

    Raises:
        DataError: a repeated column name, or a column the run names that the header lacks.
    """
    repeated = sorted({str(c) for c in header if header.count(c) > 1})
    if repeated:
        named = [c for c in repeated if c in keys]
        told = (f"names column '{named[0]}' {header.count(named[0])} times" if named
                else f"repeats {len(repeated)} column name(s)")
        raise DataError(f"CSV file '{path}' header repeats column(s) {', '.join(repeated)}: give each column its own name",
                        public=f"the CSV header {told}: give each column its own name")
    for col, key in keys.items():
        if col not in header:
            cols = ", ".join(sorted(str(c) for c in header))
            raise DataError(f"CSV file '{path}' has no column '{col}' (columns: {cols}); {_column_fix(key)}",
                            public=f"the CSV file has no column '{col}' ({len(header)} columns, their names in the "
                                   f"branch's own error log); {_column_fix(key)}")


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
                raise DataError(f"CSV file '{path}' has no header row: add a header naming the columns",
                                public="the CSV file has no header row: add a header naming the columns")
            width = len(reader.fieldnames)
            keys = columns if isinstance(columns, dict) else dict.fromkeys(columns, "data.text-column")
            _check_header(path, reader.fieldnames, keys)
            for lineno, row in enumerate(reader, start=2):
                if None in row or len(row) != width or any(v is None for v in row.values()):
                    raise DataError(f"{path}:{reader.line_num}: malformed CSV row (expected {width} fields); check quoting and separators",
                                    public=f"data file line {reader.line_num}: malformed CSV row (expected {width} fields); check quoting and separators")
                yield lineno, row
    except UnicodeDecodeError as err:
        raise DataError(f"CSV file '{path}' is not UTF-8 text: re-save it as UTF-8 CSV",
                        public="the CSV file is not UTF-8 text: re-save it as UTF-8 CSV") from err
    except csv.Error as err:
        where = f"{path}:{reader.line_num}" if reader is not None and reader.line_num else f"CSV file '{path}'"
        raise DataError(f"{where}: malformed CSV ({err}); check quoting and separators",
                        public="malformed CSV; check quoting and separators") from err


def _read_jsonl(path: Path):
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg}); one JSON object per line",
                                    public=f"data file line {lineno}: not valid JSON ({err.msg}); one JSON object per line") from err
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object per line",
                                    public=f"data file line {lineno}: expected a JSON object per line")
                yield lineno, row
    except UnicodeDecodeError as err:
        raise DataError(f"JSONL file '{path}' is not UTF-8 text: re-save it as UTF-8",
                        public="the JSONL file is not UTF-8 text: re-save it as UTF-8") from err


def corpus_table(cfg: RunConfig, corpus: Corpus) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` that :func:`load_file` reads back as ``corpus`` (for writing a branch's own file).

    A text corpus gives ``[data.text-column, data.label-column]``; a dialogue
    corpus ``[data.prompt-column, data.response-column, data.label-column]``;
    a record corpus its record columns (in first-seen order) then the label column.
    """
    label_column = cfg.data.label_column
    if corpus.responses is not None:
        header = [cfg.task.prompt_column, cfg.task.response_column, label_column]
        return header, [[p, r, t] for p, r, t in zip(corpus.texts, corpus.responses, corpus.labels)]
    if corpus.records is None:
        return [cfg.data.text_column, label_column], [[t or "", l] for t, l in zip(corpus.texts, corpus.labels)]
    columns: list[str] = []
    for record in corpus.records:
        for column in record or {}:
            if column not in columns and column != label_column:
                columns.append(column)
    rows = [[(record or {}).get(c, "") for c in columns] + [label] for record, label in zip(corpus.records, corpus.labels)]
    return columns + [label_column], rows
