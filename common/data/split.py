"""The seeded train/held-out split and the partition of training rows over branches.

Pure functions of the labels, sizes and seed, so every node derives the
same split and the same parts without talking to the others.  They cut a
fixed corpus (a CSV/JSONL file, :func:`common.data.sources.file_split`);
synthetic branches draw their size and label mix from the marginals of
:func:`partition` instead (:func:`common.data.synthetic.streams.synthetic_branch_labels`).
"""

from __future__ import annotations

import numpy as np

from common.errors import DataError


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
            from sklearn.model_selection import StratifiedShuffleSplit  # lazily: scikit-learn is slow to import

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
