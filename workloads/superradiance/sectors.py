"""Excitation-number sectors: the block structure that makes the exact solvers fast.

The excitation number (nuclear spins up + electron up) is conserved by H and lowered by
one by the jump S-. Sector k holds the "down" states |e=down, k nuclear up> (dimension
C(N, k)) and the "up" states |e=up, k-1 nuclear up> (dimension C(N, k-1)). The flip-flop
Hamiltonian couples them through B_k, the matrix of A- = sum_i g_i I-_i from k-up to
(k-1)-up nuclear configurations; the jump maps the up states of sector k+1 onto the down
states of sector k with the same nuclear configuration.

Nuclear configurations are integers whose bit N-1-i is 1 when spin i is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import comb

import numpy as np
import scipy.sparse as sp

from workloads.superradiance.model import Model


@dataclass(frozen=True)
class Sectors:
    """Nuclear configurations grouped by the number of spins up, and the lowering blocks B_k."""

    model: Model

    @property
    def n(self) -> int:
        """Number of nuclear spins."""
        return self.model.n

    def down_dim(self, k: int) -> int:
        """Dimension of the electron-down part of sector k: C(N, k)."""
        return comb(self.n, k) if 0 <= k <= self.n else 0

    def up_dim(self, k: int) -> int:
        """Dimension of the electron-up part of sector k: C(N, k-1)."""
        return comb(self.n, k - 1) if 1 <= k <= self.n + 1 else 0

    @cached_property
    def _popcount(self) -> np.ndarray:
        configs = np.arange(2**self.n, dtype=np.int64)
        counts = np.zeros_like(configs)
        for bit in range(self.n):
            counts += (configs >> bit) & 1
        return counts

    def configs(self, ups: int) -> np.ndarray:
        """Return the nuclear configurations with `ups` spins up, in increasing order."""
        return np.flatnonzero(self._popcount == self.n - ups).astype(np.int64)

    @cached_property
    def position(self) -> np.ndarray:
        """Index of each nuclear configuration within its group of equal spins-up count."""
        pos = np.empty(2**self.n, dtype=np.int64)
        for ups in range(self.n + 1):
            idx = self.configs(ups)
            pos[idx] = np.arange(idx.size)
        return pos

    def lowering(self, k: int) -> sp.csr_matrix:
        """Return B_k (C(N,k-1) x C(N,k)): A- restricted to k-up configurations, real CSR."""
        src = self.configs(k)
        rows, cols, vals = [], [], []
        for i in range(self.n):
            bit = np.int64(1) << (self.n - 1 - i)
            up = (src & bit) == 0
            cols.append(np.flatnonzero(up))
            rows.append(self.position[src[up] | bit])
            vals.append(np.full(int(up.sum()), self.model.g[i]))
        shape = (self.up_dim(k), self.down_dim(k))
        if not rows:
            return sp.csr_matrix(shape)
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
        )

    def full_index(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the full-space basis indices of sector k's down part and up part."""
        down = (1 << self.n) + self.configs(k) if self.down_dim(k) else np.zeros(0, np.int64)
        up = self.configs(k - 1) if self.up_dim(k) else np.zeros(0, np.int64)
        return down, up

    def initial_sector(self) -> int:
        """Sector of the default initial state (all nuclei up, electron down): k = N."""
        return self.n

    def iz_values(self, k: int) -> tuple[float, float]:
        """Return <Iz> of the down part (k up) and of the up part (k-1 up) of sector k."""
        return k - self.n / 2.0, k - 1 - self.n / 2.0
