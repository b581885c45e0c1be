"""The whole data set of a captured run, from the batches its backward passes saw.

A batch is traced back to the tensor or the DataLoader's data set it was taken from, and its
rows looked up there; the rows each step used then tell the batch size, the shuffling and
whether the last batch is dropped. Without a source, the distinct rows seen stand in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from advisor.probe.records import Backward, LoaderInfo, Model, Source, copy_values
from advisor.reporters.text import plural

MATCH_ROWS = 50_000  # rows looked up in a candidate data set


@dataclass
class Data:
    """The rows the model trains on, and how it walks through them."""

    features: np.ndarray
    targets: np.ndarray
    batch: int | None
    shuffle: bool
    drop_last: bool
    notes: list[str]
    full_batch: bool = False

    def per_epoch(self, steps: int) -> int | None:
        if self.full_batch:
            return steps
        rows = self.features.shape[0]
        size = rows if self.batch is None or self.batch >= rows else self.batch
        per_epoch = max(rows // size, 1) if self.drop_last else -(-rows // size)
        return steps // per_epoch if steps % per_epoch == 0 else None


def training_data(records: list[Backward], model: Model, notes: list[str]) -> Data:
    stored = [r for r in records if r.x is not None]
    if not stored:
        raise ValueError("the training batches were too large to record")
    first = stored[0]
    k = model.k
    p = model.p
    if len(stored) >= 2 and all(
        r.x.shape == first.x.shape
        and r.y.shape == first.y.shape
        and bool((r.x == first.x).all())
        and bool((r.y == first.y).all())
        for r in stored[1:4]
    ):
        return _full(first, p, k, [])
    x_sources = [s for r in stored[:8] for s in r.x_sources]
    y_sources = [s for r in stored[:8] for s in r.y_sources]
    loader = next((s.loader for s in x_sources + y_sources if s.loader is not None), None)
    found = _match_sources(stored, x_sources, y_sources, p, k)
    if found is not None:
        features, targets, order = found
        if features.shape[0] <= first.x.reshape(-1, p).shape[0] and len(stored) == 1:
            return _full(first, p, k, [])
        if loader is not None and loader.batch_size is not None:
            return Data(features, targets, loader.batch_size, loader.shuffle, loader.drop_last, [])
        walk = _walk(order, features.shape[0])
        if walk.rows is not None:
            features, targets = features[walk.rows], targets[walk.rows]
        return Data(features, targets, walk.batch, walk.shuffle, walk.drop_last, walk.notes)
    if len(stored) == 1:
        return _full(first, p, k, [])
    return _union(stored, p, k, loader)


def _full(record: Backward, p: int, k: int, notes: list[str]) -> Data:
    x = copy_values(record.x).reshape(-1, p)
    y = copy_values(record.y).reshape(-1, k)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the inputs have {x.shape[0]} rows but the targets {y.shape[0]}")
    return Data(x, y, None, False, False, notes, full_batch=True)


def _candidates(sources: list[Source]) -> list[Any]:
    """Tensors or arrays a batch may come from, most specific first."""
    found: list[Any] = []
    for source in sources:
        if source.tensor is not None:
            found.append(source.tensor)
        elif source.loader is not None:
            found.extend(_dataset_arrays(source.loader.dataset, source.position))
    unique: dict[int, Any] = {}
    for item in found:
        unique.setdefault(id(item), item)
    return list(unique.values())


def _dataset_arrays(dataset: Any, position: int) -> list[Any]:
    """The columns of a data set: TensorDataset's tensors, a Subset's rows, tensor attributes."""
    import torch
    from torch.utils.data import Subset, TensorDataset

    if isinstance(dataset, TensorDataset):
        tensors = list(dataset.tensors)
        ordered = tensors[position : position + 1] + tensors
        return ordered
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        inner = _dataset_arrays(dataset.dataset, position)
        return [torch.as_tensor(a)[indices] for a in inner]
    try:
        length = len(dataset)
    except TypeError:
        return []
    arrays = []
    for value in vars(dataset).values() if hasattr(dataset, "__dict__") else []:
        is_array = isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim >= 1
        if is_array and value.shape[0] == length:
            arrays.append(value)
    return arrays


def _as_rows(candidate: Any, like: Any, width: int) -> np.ndarray | None:
    """A candidate as float64 rows of `width`, through the batch's dtype (float32 rounding)."""
    import torch

    tensor = torch.as_tensor(candidate).detach()
    if tensor.numel() == 0 or tensor.numel() % width or tensor.shape[0] * width != tensor.numel():
        return None
    return tensor.to(like.dtype).cpu().double().numpy().reshape(-1, width).copy()


def _match_sources(
    stored: list[Backward], x_sources: list[Source], y_sources: list[Source], p: int, k: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """The data set the batches are rows of, with the row indices of each batch."""
    xs = _candidates(x_sources)
    ys = _candidates(y_sources)
    if not xs:
        return None
    if not ys:
        ys = xs
    like_x, like_y = stored[0].x, stored[0].y
    for cx in xs:
        features = _as_rows(cx, like_x, p)
        if features is None:
            continue
        for cy in ys:
            if cy is cx and p != k:
                continue
            targets = _as_rows(cy, like_y, k)
            if targets is None or targets.shape[0] != features.shape[0]:
                continue
            order = _lookup(stored, features, targets, p, k)
            if order is not None:
                return features, targets, order
    return None


def _lookup(
    stored: list[Backward], features: np.ndarray, targets: np.ndarray, p: int, k: int
) -> list[np.ndarray] | None:
    index: dict[bytes, list[int]] = {}
    for row, values in enumerate(features):
        index.setdefault(values.tobytes(), []).append(row)
    order: list[np.ndarray] = []
    looked = 0
    for record in stored:
        xb = copy_values(record.x).reshape(-1, p)
        yb = copy_values(record.y).reshape(-1, k)
        if xb.shape[0] != yb.shape[0]:
            return None
        rows = np.empty(xb.shape[0], dtype=np.int64)
        for j in range(xb.shape[0]):
            matches = index.get(xb[j].tobytes())
            if not matches:
                return None
            hit = next((i for i in matches if np.array_equal(targets[i], yb[j])), None)
            if hit is None:
                return None
            rows[j] = hit
        order.append(rows)
        looked += xb.shape[0]
        if looked >= MATCH_ROWS:
            break
    return order


@dataclass
class Walk:
    """How a script goes through the rows of its data set, from the rows each step used."""

    batch: int
    shuffle: bool
    drop_last: bool
    rows: np.ndarray | None  # the data set's rows in the order the script visits them
    notes: list[str]


def _walk(order: list[np.ndarray], n: int) -> Walk:
    """Batch size, shuffling and dropping of the last batch, from the rows each step used.

    A script that goes through the rows in the same order every epoch (the data's own order,
    or a permutation drawn once) does not shuffle: the data set is reordered to that order.
    """
    batch = int(order[0].shape[0])
    epochs: list[list[int]] = [[]]
    seen: set[int] = set()
    for rows in order:
        values = [int(r) for r in rows]
        if len(seen) >= n or seen.intersection(values):
            epochs.append([])
            seen = set()
        epochs[-1].extend(values)
        seen.update(values)
    first = epochs[0]
    later = epochs[1:]
    if not later:  # the first epoch is not over: nothing to compare it with
        in_order = first == list(range(len(first)))
        return Walk(batch, not in_order, False, None, [])
    if not all(e == first[: len(e)] for e in later):
        return Walk(batch, True, len(first) < n, None, [])
    unseen = n - len(first)
    if unseen == 0:
        return Walk(batch, False, False, np.array(first), [])
    if unseen < batch and len(first) % batch == 0:
        rest = sorted(set(range(n)) - set(first))
        return Walk(batch, False, True, np.array(first + rest), [])
    note = f"the script trains on {len(first)} of the {n} rows of its data set, in a fixed order"
    return Walk(batch, False, False, np.array(first), [note])


def _union(stored: list[Backward], p: int, k: int, loader: LoaderInfo | None) -> Data:
    seen: dict[bytes, int] = {}
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    steps = 0
    for record in stored:
        xb = copy_values(record.x).reshape(-1, p)
        yb = copy_values(record.y).reshape(-1, k)
        if xb.shape[0] != yb.shape[0]:
            raise ValueError(f"the inputs have {xb.shape[0]} rows but the targets {yb.shape[0]}")
        fresh = False
        for j in range(xb.shape[0]):
            key = xb[j].tobytes() + yb[j].tobytes()
            if key not in seen:
                seen[key] = len(xs)
                xs.append(xb[j])
                ys.append(yb[j])
                fresh = True
        if not fresh and steps:
            break
        steps += 1
    batch = loader.batch_size if loader is not None and loader.batch_size else stored[0].x.shape[0]
    note = (
        f"the whole data set could not be traced: the probe uses the {len(xs)} distinct rows the "
        f"model saw in its first {plural(steps, 'step')}"
    )
    return Data(
        np.array(xs),
        np.array(ys),
        int(batch),
        loader.shuffle if loader is not None else True,
        loader.drop_last if loader is not None else False,
        [note],
    )
