"""Seeded synthetic data, one random stream per node.

Branch ``p``'s records come from its own stream, derived from ``(seed, p)``
(:func:`synthetic_branch_rows`, :func:`synthetic_branch`), and the server's
held-out records from a stream of their own (:func:`synthetic_held_out_rows`),
so a branch's data costs O(its own size) whatever ``num-branches`` is.  A
branch's size and label mix follow the marginals of the Dirichlet partition
:func:`common.data.split.partition` makes of a fixed corpus
(:func:`synthetic_branch_labels`); the held-out set is ``data.test-fraction``
of the corpus the federation's records would make, at most
:data:`HELD_OUT_CAP` rows (:func:`held_out_size`).  Everything is
deterministic for a seed, so every node derives the same data without talking
to the others.  The records themselves come from the task's generator
(:mod:`common.data.synthetic.messages`, :mod:`common.data.synthetic.records`,
:mod:`common.data.synthetic.dialogues`).  The held-out corpus with its class check
(:func:`common.data.sources.synthetic_held_out`) and the whole federation's
(:func:`common.data.sources.synthetic_corpus`) are assembled in
:mod:`common.data.sources`; the run's label set is :mod:`common.data.labels`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.synthetic.dialogues import TOPICS, Dialogue, generate_labelled_dialogues
from common.data.synthetic.messages import INTENTS, generate_labelled_records
from common.data.synthetic.records import APPLICANT_ID_COLUMNS, BAD_RATE, FRAUD_RATE, TRANSACTION_ID_COLUMNS, TabularRecord, generate_labelled
from common.errors import DataError
from common.tasks.spec import Task, task_of

#: ``data.source`` naming the seeded generators instead of a file.
SYNTHETIC = "synthetic"

#: Most rows of the synthetic held-out set: it is data.test-fraction of the federation's corpus up to this
#: many rows, so the server's data and its evaluation per round stop growing with num-branches.
HELD_OUT_CAP = 2000
#: Fewest training rows a branch gets (:func:`common.data.split.partition`'s ``min_size``).
MIN_BRANCH_ROWS = 2
#: Concentration of :func:`common.data.split.partition`'s iid branch sizes (Dirichlet(5) shares of the pool).
IID_CONCENTRATION = 5.0
#: The labels of the text generators (a binary task's are its ``synthetic_labels``).
_TEXT_LABELS = {"intent": INTENTS, "chat": TOPICS}
#: The share of the positive class of the binary generators.
_POSITIVE_RATES = {"credit": BAD_RATE, "fraud": FRAUD_RATE}
#: The identifier columns of the record generators' records (dropped before a record is rendered).
_ID_COLUMNS = {"credit": APPLICANT_ID_COLUMNS, "fraud": TRANSACTION_ID_COLUMNS}
#: The text generators (messages for intent, dialogues for chat): ``(labels, rng, zh_fraction=)`` -> records.
_TEXT_GENERATORS = {"intent": generate_labelled_records, "chat": generate_labelled_dialogues}


def derived_stream(seed: int, *parts: str | int) -> random.Random:
    """A random stream of its own for ``parts`` (``("branch", 3)``, ``("held-out",)``) under the run seed.

    SHA-256 of the seed and the parts seeds Python's ``random.Random``: the
    same on every node and process (no hash randomization), and independent
    of every other part's stream.
    """
    digest = hashlib.sha256(json.dumps([int(seed), *parts]).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def generator_labels(task: Task) -> tuple[str, ...]:
    """The labels of ``task``'s synthetic generator (binary: negative, positive; chat: the dialogue topics).

    Raises:
        DataError: the task has no synthetic generator.
    """
    if task.binary:
        return task.synthetic_labels
    if task.name not in _TEXT_LABELS:
        raise DataError(f"task '{task.name}' has no synthetic record generator here: set data.source to a CSV/JSONL file")
    return _TEXT_LABELS[task.name]


def generator_id_columns(task: Task) -> tuple[str, ...]:
    """The identifier columns of ``task``'s synthetic records (none for the text tasks)."""
    return _ID_COLUMNS.get(task.name, ())


def synthetic_priors(cfg: RunConfig) -> dict[str, float]:
    """Each label of the synthetic generator of ``cfg``'s task and its share of the generator's records.

    intent: the :data:`common.data.synthetic.messages.INTENTS`, uniform; chat:
    the dialogue :data:`common.data.synthetic.dialogues.TOPICS`, uniform;
    credit: ``bad`` 30 %; fraud: ``fraud`` 1 % (:data:`common.data.synthetic.records.BAD_RATE`, ``FRAUD_RATE``).
    """
    task = task_of(cfg)
    names = generator_labels(task)
    if not task.binary:
        return {label: 1.0 / len(names) for label in names}
    rate = _POSITIVE_RATES[task.name]
    negative, positive = names
    return {negative: 1.0 - rate, positive: rate}


def _stochastic_round(rng: random.Random, x: float) -> int:
    """``floor(x)`` or ``floor(x) + 1``, the latter with probability ``x - floor(x)`` (unbiased)."""
    whole = math.floor(x)
    return int(whole) + (rng.random() < x - whole)


def synthetic_branch_labels(cfg: RunConfig, rng: random.Random) -> list[str]:
    """The labels of one simulated branch's synthetic records, drawn from the branch's own stream ``rng``.

    The federation's synthetic training pool is ``records-per-branch x
    num-branches`` rows at the generator's label shares
    (:func:`synthetic_priors`).  :func:`common.data.split.partition` would cut such
    a pool into branches with symmetric Dirichlet shares; here each branch
    draws its own share from the *marginal* of that Dirichlet over
    ``N = num-branches`` branches, Beta(c, c(N - 1)) (exactly 1 when N = 1),
    so no node needs the others' data:

    * ``iid``: one share of the whole pool (c = 5,
      :func:`common.data.split.partition`'s iid sizes), labels drawn at the
      generator's shares;
    * ``dirichlet``: for each label its own share (c = ``data.dirichlet-alpha``)
      of that label's rows of the pool: the label skew of
      :func:`common.data.split.partition`.

    Counts are rounded stochastically (a branch's expected size is
    records-per-branch); a branch with fewer than :data:`MIN_BRANCH_ROWS` rows
    draws again from its stream, as :func:`common.data.split.partition` retries.
    Not kept: the shares of all branches summing to one -- branches draw
    independently, so the federation's total varies around the pool's size.
    Returned shuffled.

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
    zh = cfg.data.zh_fraction
    name = cfg.task.name
    if name in _POSITIVE_RATES:
        return generate_labelled(name, labels, rng, zh_fraction=zh, id_tag=tag)
    return _TEXT_GENERATORS[name](labels, rng, zh_fraction=zh)


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


def rows_corpus(rows: list) -> Corpus:
    """Generator records as a :class:`Corpus`: texts (intent), records (credit, fraud) or dialogues (chat)."""
    if rows and isinstance(rows[0], Dialogue):
        return Corpus([d.prompt for d in rows], [d.topic for d in rows], responses=[d.response for d in rows])
    if rows and isinstance(rows[0], TabularRecord):
        return Corpus([None] * len(rows), [r.label for r in rows], [dict(r.fields) for r in rows])
    return Corpus([r.text for r in rows], [r.label for r in rows])


def synthetic_branch(cfg: RunConfig, partition_id: int) -> Corpus:
    """Branch ``partition_id``'s synthetic training corpus (see :func:`synthetic_branch_rows`)."""
    return rows_corpus(synthetic_branch_rows(cfg, partition_id))
