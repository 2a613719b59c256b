"""Reproducible train / validation / test splits."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def split_indices(n_rows: int, val_fraction: float, test_fraction: float, seed: int,
                  labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Divide ``range(n_rows)`` into train, validation and test index arrays.

    Parameters
    ----------
    n_rows : int
    val_fraction, test_fraction : float
        Shares of the rows for validation and test.
    seed : int
        The same seed and data always give the same split.
    labels : ndarray of int, optional
        Class indices; when given the split is stratified - every class keeps its share in
        every part (classes too small to share are kept in training).

    Returns
    -------
    dict
        ``{"train": idx, "val": idx, "test": idx}``, each sorted.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    groups = [np.arange(n_rows)] if labels is None else [
        np.flatnonzero(labels == c) for c in np.unique(labels)]
    for members in groups:
        members = rng.permutation(members)
        n_test, n_val = _part_sizes(len(members), val_fraction, test_fraction,
                                    labels is not None)
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    out = {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}
    for name in ("train", "val", "test"):
        if len(out[name]) == 0:
            raise DataError(f"There are too few rows ({n_rows}) to make a {name} set. Add data "
                            f"or change the validation and test shares.")
    return out


def _part_sizes(n: int, val_fraction: float, test_fraction: float, stratified: bool
                ) -> tuple[int, int]:
    """Test and validation sizes for a group of *n* rows."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if stratified and n < 3:
        n_test = n_val = 0
    if n - n_test - n_val < 1:
        n_test, n_val = min(n_test, max(n - 1, 0)), 0
    return n_test, n_val


def split_sizes(group_sizes: list[int], val_fraction: float, test_fraction: float,
                stratified: bool) -> dict[str, int]:
    """Exactly how many rows :func:`split_indices` puts in each part, without splitting.

    *group_sizes* is ``[n_rows]`` for a plain split or the rows per class for a stratified one.
    """
    sizes = {"train": 0, "val": 0, "test": 0}
    for n in group_sizes:
        n_test, n_val = _part_sizes(n, val_fraction, test_fraction, stratified)
        sizes["test"] += n_test
        sizes["val"] += n_val
        sizes["train"] += n - n_test - n_val
    return sizes


def fold_parts(parts: dict[str, np.ndarray], folds: int, fold: int, seed: int,
               labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Cross-validation: rotate the validation set through *folds* parts of the non-test rows.

    The test rows stay as they are (held out from every fold). The training and validation
    rows of *parts* are pooled and dealt into *folds* folds - per class when *labels* (indexed
    like ``range(n_rows)``) are given, so every fold keeps the class shares; fold *fold*
    (0-based) validates and the others train. The same seed always deals the same folds.

    Raises
    ------
    DataError
        If there are fewer pooled rows than folds.
    """
    if folds < 2:
        return parts
    if not 0 <= fold < folds:
        raise DataError(f"Fold {fold + 1} does not exist with {folds} folds.")
    pool = np.sort(np.concatenate([parts["train"], parts["val"]]))
    if len(pool) < folds:
        raise DataError(f"There are too few rows ({len(pool)}) for {folds}-fold "
                        f"cross-validation. Use fewer folds.")
    rng = np.random.default_rng([seed, 1])  # independent of the test split's stream
    assignment = np.empty(len(pool), np.int64)
    groups = [np.arange(len(pool))] if labels is None else [
        np.flatnonzero(labels[pool] == c) for c in np.unique(labels[pool])]
    offset = 0
    for members in groups:
        members = rng.permutation(members)
        # Deal round-robin, continuing where the last class ended: folds differ by one row.
        assignment[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    val = pool[assignment == fold]
    train = pool[assignment != fold]
    return {"train": train, "val": val, "test": parts["test"]}
