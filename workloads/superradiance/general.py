"""The exact solver for any couplings: the Lindblad equation in excitation-number blocks.

Starting from a state without coherence between excitation sectors (the default initial
state lives in one sector), the density matrix stays block diagonal: rho = sum_k rho_k, and
each rho_k splits into X_k (electron down), Y_k (coherence) and Z_k (electron up). With
c = A/2 and B_k the lowering block of :mod:`.sectors`:

    dX_k = -i c (P - P^H) + gamma Z_{k+1},        P = B_k^T Y_k^H
    dY_k = -i c (B_k^T Z_k - X_k B_k^T) - gamma/2 Y_k
    dZ_k = -i c (Q - Q^H) - gamma Z_k,            Q = B_k Y_k

so one right-hand side costs four sparse-times-dense products per sector instead of dense
products of 2^(N+1)-sized matrices. Coherences between sectors evolve on their own and
never reach the populations, so dropping them leaves <Iz>(t) and the intensity exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from workloads.superradiance.backends import Backend, NumpyBackend
from workloads.superradiance.dopri5 import integrate_on_grid
from workloads.superradiance.model import Model
from workloads.superradiance.sectors import Sectors


@dataclass
class _Block:
    k: int
    down: int
    up: int
    x: slice
    y: slice
    z: slice
    b: Any = None  # B_k on the backend
    bt: Any = None  # B_k^T on the backend
    b_rows: Any = None
    b_cols: Any = None
    b_vals: Any = None


class BlockLindblad:
    """The Lindblad right-hand side on the block-diagonal state of sectors 0..top."""

    def __init__(self, model: Model, *, backend: Backend | None = None, top: int | None = None) -> None:
        self.model = model
        self.be = backend or NumpyBackend()
        self.sectors = Sectors(model)
        self.top = model.n if top is None else top
        self.blocks: list[_Block] = []
        offset = 0
        for k in range(self.top + 1):
            d, u = self.sectors.down_dim(k), self.sectors.up_dim(k)
            x = slice(offset, offset + d * d)
            y = slice(x.stop, x.stop + d * u)
            z = slice(y.stop, y.stop + u * u)
            offset = z.stop
            block = _Block(k=k, down=d, up=u, x=x, y=y, z=z)
            if d and u:
                b = self.sectors.lowering(k)
                coo = b.tocoo()
                block.b = self.be.sparse(b)
                block.bt = self.be.sparse(sp.csr_matrix(b.T))
                block.b_rows = self.be.index(coo.row)
                block.b_cols = self.be.index(coo.col)
                block.b_vals = self.be.asarray(coo.data)
            self.blocks.append(block)
        self.size = offset

    def views(self, y: Any, block: _Block) -> tuple[Any, Any, Any]:
        """Return the X, Y, Z views of one sector inside the flat state."""
        d, u = block.down, block.up
        return y[block.x].reshape(d, d), y[block.y].reshape(d, u), y[block.z].reshape(u, u)

    def rhs(self, _t: float, y: Any) -> Any:
        """Return d(state)/dt."""
        be, c, gam = self.be, self.model.c, self.model.gamma
        dy = be.zeros(self.size)
        for block in self.blocks:
            x, yy, z = self.views(y, block)
            dx, dyy, dz = self.views(dy, block)
            if block.down and block.up:
                p = be.spmm(block.bt, be.herm(yy))
                dx[...] = (-1j * c) * (p - be.herm(p))
                q = be.spmm(block.b, yy)
                dz[...] = (-1j * c) * (q - be.herm(q)) - gam * z
                r = be.spmm(block.bt, z) - be.herm(be.spmm(block.b, x))
                dyy[...] = (-1j * c) * r - (0.5 * gam) * yy
            elif block.up:
                dz[...] = -gam * z
            if block.k < self.top and block.down:
                above = self.blocks[block.k + 1]
                dx += gam * y[above.z].reshape(above.up, above.up)
        return dy

    def observe(self, _t: float, y: Any) -> tuple[float, float, float]:
        """Return (<Iz>, intensity -d<Iz>/dt, trace) of a state."""
        be, n = self.be, self.model.n
        iz = trace = intensity = 0.0
        for block in self.blocks:
            x, yy, z = self.views(y, block)
            tx = be.sum_real(x.diagonal()) if block.down else 0.0
            tz = be.sum_real(z.diagonal()) if block.up else 0.0
            iz += (block.k - n / 2) * tx + (block.k - 1 - n / 2) * tz
            trace += tx + tz
            if block.down and block.up:
                # tr(B Y) = sum over B's entries of B[p, q] * Y[q, p]; intensity = 2c Im tr(B Y)
                tr_by = (block.b_vals * yy[block.b_cols, block.b_rows]).sum()
                intensity += 2 * self.model.c * float(tr_by.imag)
        return iz, intensity, trace

    def error_norm(self, rtol: float, atol: float) -> Callable[[Any, Any, Any], float]:
        """Return the integrator's scaled RMS error norm for these tolerances."""
        return lambda err, y0, y1: self.be.scaled_rms(err, y0, y1, rtol, atol)

    # --- full-space conversion ---------------------------------------------------------

    def from_full(self, rho: np.ndarray | sp.spmatrix) -> Any:
        """Return the block-diagonal part of a full 2^(N+1) density matrix as a flat state."""
        flat = np.zeros(self.size, dtype=np.complex128)
        rho = sp.csr_matrix(rho) if sp.issparse(rho) else np.asarray(rho)
        for block in self.blocks:
            down, up = self.sectors.full_index(block.k)
            for sl, rows, cols in ((block.x, down, down), (block.y, down, up), (block.z, up, up)):
                if rows.size and cols.size:
                    sub = rho[rows][:, cols]
                    flat[sl] = (sub.toarray() if sp.issparse(sub) else sub).ravel()
        return self.be.asarray(flat)

    def default_state(self) -> Any:
        """Return the original's initial state: all nuclear spins up, the electron down (sector N)."""
        flat = np.zeros(self.size, dtype=np.complex128)
        flat[self.blocks[self.model.n].x.start] = 1.0
        return self.be.asarray(flat)

    def to_full(self, y: Any) -> np.ndarray:
        """Return the dense 2^(N+1) density matrix of a flat state (small N only)."""
        flat = self.be.to_numpy(y)
        dim = 2 ** (self.model.n + 1)
        rho = np.zeros((dim, dim), dtype=np.complex128)
        for block in self.blocks:
            down, up = self.sectors.full_index(block.k)
            d, u = block.down, block.up
            x, yy, z = flat[block.x].reshape(d, d), flat[block.y].reshape(d, u), flat[block.z].reshape(u, u)
            if d:
                rho[np.ix_(down, down)] = x
            if d and u:
                rho[np.ix_(down, up)] = yy
                rho[np.ix_(up, down)] = yy.conj().T
            if u:
                rho[np.ix_(up, up)] = z
        return rho


@dataclass
class GeneralSolution:
    """What the exact block solver returns."""

    t: np.ndarray
    polarization: np.ndarray
    intensity: np.ndarray
    trace: np.ndarray
    final_state: Any
    system: BlockLindblad
    steps: int
    rhs_evaluations: int


def top_sector(system_sectors: Sectors, rho: np.ndarray | sp.spmatrix) -> int:
    """Return the highest excitation sector with weight in rho (the blocks above stay zero)."""
    diag = np.abs(np.asarray(rho.diagonal() if sp.issparse(rho) else np.diagonal(rho)))
    n = system_sectors.n
    electron_up = np.arange(diag.size) < 2**n
    configs = np.arange(diag.size) % 2**n
    ups = n - np.array([bin(int(cfg)).count("1") for cfg in configs])
    excitations = ups + electron_up
    weighted = excitations[diag > 0]
    return int(weighted.max()) if weighted.size else 0


def solve_general(
    model: Model,
    *,
    times: np.ndarray,
    rho0: np.ndarray | sp.spmatrix | None = None,
    backend: Backend | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    stop: Callable[[], bool] | None = None,
) -> GeneralSolution:
    """Integrate the Lindblad equation exactly (to rtol/atol) and sample <Iz>, intensity, trace on times."""
    sectors = Sectors(model)
    top = model.n if rho0 is None else top_sector(sectors, rho0)
    system = BlockLindblad(model, backend=backend, top=top)
    y0 = system.default_state() if rho0 is None else system.from_full(rho0)
    samples, solver = integrate_on_grid(
        system.rhs,
        y0,
        np.asarray(times, dtype=float),
        rtol=rtol,
        atol=atol,
        norm=system.error_norm(rtol, atol),
        observe=system.observe,
        stop=stop,
    )
    arr = np.asarray(samples, dtype=float)
    return GeneralSolution(
        t=np.asarray(times, dtype=float)[: len(arr)],
        polarization=arr[:, 0],
        intensity=arr[:, 1],
        trace=arr[:, 2],
        final_state=solver.y,
        system=system,
        steps=solver.steps,
        rhs_evaluations=solver.nfev,
    )
