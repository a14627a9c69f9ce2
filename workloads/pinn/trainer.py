"""Train a PINN: Adam with a decaying learning rate, then L-BFGS, data parallel, resumable.

Every rank holds the same global set of collocation points and trains on its share
(every world_size-th row). A rank's loss is its share of the global mean, so summing
losses and gradients over ranks (one all-reduce per evaluation) gives exactly the
single-process gradient, up to the order of floating-point sums: every rank then takes
the same optimiser step and the replicas never drift apart. L-BFGS's line search sees
the same summed loss on every rank and makes the same decisions.

Residual-based adaptive refinement (RAR): every ``rar_every`` steps, the residual is
evaluated on fresh random candidates (sharded, then gathered) and the ``rar_points``
worst are added to the global set, identically on every rank. With ``rar_lbfgs`` this goes on
during L-BFGS (whose curvature history then restarts, the loss having changed): L-BFGS alone
otherwise overfits the fixed set, and its error rises late in long runs.

The state saved every ``checkpoint_every`` steps (model, optimiser, scheduler, points,
history) is all that determines the rest of the run, so a resumed run ends bitwise
identical to an uninterrupted one on the same hardware and layout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from workloads.common.checkpoint import Checkpointer, GracefulStop, Preempted
from workloads.pinn.distributed import Comm
from workloads.pinn.network import PINN
from workloads.pinn.problems.base import Problem
from workloads.pinn.progress import TrainingBar

Precision = Literal["float32", "float64", "mixed"]


class DivergedError(RuntimeError):
    """The loss stopped being a finite number."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run (the resolved hyperparameters)."""

    width: int
    depth: int
    points: int
    adam_steps: int
    lbfgs_steps: int
    lr: float
    lr_decay: float = 0.1
    precision: Precision = "mixed"
    rar_every: int = 0
    rar_points: int = 100
    rar_candidates: int = 10000
    rar_lbfgs: bool = True
    checkpoint_every: int = 500
    eval_every: int = 100
    seed: int = 0
    lbfgs_chunk: int = 25
    lbfgs_history: int = 50

    @property
    def total_steps(self) -> int:
        """Return Adam steps plus L-BFGS iterations."""
        return self.adam_steps + self.lbfgs_steps

    def dtype(self, phase: str) -> torch.dtype:
        """Return the floating-point type used in a phase ('adam' or 'lbfgs')."""
        if self.precision == "float64" or (self.precision == "mixed" and phase == "lbfgs"):
            return torch.float64
        return torch.float32


@dataclass
class History:
    """What happened during training, kept in the checkpoint so a resumed run reports the whole run."""

    loss: list[list[float]] = field(default_factory=list)  # [step, loss]
    error: list[list[float]] = field(default_factory=list)  # [step, train seconds, relative L2]
    train_s: float = 0.0
    refinements: int = 0
    adam_s: float = 0.0  # the part of train_s spent in each phase
    lbfgs_s: float = 0.0
    lbfgs_evaluations: int = 0  # loss-and-gradient evaluations by L-BFGS (line search included)

    def as_state(self) -> dict[str, Any]:
        """Return a checkpointable form."""
        return {
            "loss": self.loss,
            "error": self.error,
            "train_s": self.train_s,
            "refinements": self.refinements,
            "adam_s": self.adam_s,
            "lbfgs_s": self.lbfgs_s,
            "lbfgs_evaluations": self.lbfgs_evaluations,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> History:
        """Rebuild from :meth:`as_state`."""
        return cls(
            loss=[list(r) for r in state["loss"]],
            error=[list(r) for r in state["error"]],
            train_s=float(state["train_s"]),
            refinements=int(state["refinements"]),
            adam_s=float(state.get("adam_s", 0.0)),
            lbfgs_s=float(state.get("lbfgs_s", 0.0)),
            lbfgs_evaluations=int(state.get("lbfgs_evaluations", 0)),
        )


@dataclass
class TrainResult:
    """The trained model and how it got there."""

    model: PINN
    points: torch.Tensor
    history: History
    steps: int
    resumed_from: int | None
    converged_early: bool
    device: torch.device
    dtype: torch.dtype


class Evaluator:
    """Relative L2 error of a model against the problem's reference on the evaluation grid."""

    def __init__(self, problem: Problem, device: torch.device) -> None:
        self.grid = problem.grid()
        self.points = self.grid.points
        self.reference = problem.reference(self.points)
        self.device = device
        self._norm = float(np.linalg.norm(self.reference))

    def predict(self, model: PINN, dtype: torch.dtype) -> np.ndarray:
        """Return the model's prediction on the grid, (N, 1) float64."""
        x = torch.as_tensor(self.points, dtype=dtype, device=self.device)
        with torch.no_grad():
            return model(x).double().cpu().numpy()

    def relative_l2(self, model: PINN, dtype: torch.dtype) -> float:
        """Return ||prediction - reference|| / ||reference|| on the grid."""
        return float(np.linalg.norm(self.predict(model, dtype) - self.reference)) / self._norm


class Trainer:
    """One training run of a problem; :meth:`run` trains to the end or stops at a safe point."""

    def __init__(
        self,
        problem: Problem,
        config: TrainConfig,
        *,
        comm: Comm,
        device: torch.device,
        checkpointer: Checkpointer | None = None,
        stop: GracefulStop | None = None,
        resume: bool = True,
        progress: bool = False,
        log: Callable[[str], None] = print,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        self.problem = problem
        self.cfg = config
        self.comm = comm
        self.device = device
        self.checkpointer = checkpointer
        self.stop = stop
        self.resume = resume
        self.progress = progress and comm.rank == 0
        self.log = log if comm.rank == 0 else (lambda _msg: None)
        self.on_step = on_step
        self.evaluator = Evaluator(problem, device) if comm.rank == 0 else None
        obs = problem.observations()
        self.obs_x = torch.as_tensor(obs.x, dtype=torch.float64) if obs is not None else None
        self.obs_u = torch.as_tensor(obs.u, dtype=torch.float64) if obs is not None else None
        self.obs_weight = obs.weight if obs is not None else 0.0
        self.last_saved: int | None = None
        self.last_loss = math.nan
        self.last_error: float | None = None
        self._previous_step = 0

    # --- the loss -------------------------------------------------------------------

    def _shards(self, points: torch.Tensor, dtype: torch.dtype) -> None:
        self._dtype = dtype
        self._points = points
        self._x = self.comm.shard(points).to(self.device, dtype)
        self._n = points.shape[0]
        if self.obs_x is not None and self.obs_u is not None:
            self._ox = self.comm.shard(self.obs_x).to(self.device, dtype)
            self._ou = self.comm.shard(self.obs_u).to(self.device, dtype)
            self._n_obs = self.obs_x.shape[0]

    def _loss_and_grad(self, model: PINN) -> torch.Tensor:
        """Set every parameter's .grad to the global gradient; return the global loss (same on all ranks)."""
        params = list(model.parameters())
        for p in params:
            p.grad = None
        residual = model.residual(self._x)
        loss = residual.pow(2).sum() / self._n
        if self.obs_x is not None:
            misfit = model(self._ox) - self._ou
            loss = loss + self.obs_weight * misfit.pow(2).sum() / self._n_obs
        loss.backward()
        if self.comm.world_size == 1:  # nothing to sum: skip flattening and copying the gradients back
            loss = loss.detach()
            self.last_loss = float(loss)
            return loss
        grads = [
            p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1) for p in params
        ]
        flat = torch.cat([*grads, loss.detach().reshape(1)])
        self.comm.sum_(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n
        total = flat[-1]
        self.last_loss = float(total)
        return total

    # --- refinement ------------------------------------------------------------------

    def _refine(self, model: PINN, step: int) -> torch.Tensor:
        """Return the global points plus the rar_points candidates with the largest residual."""
        world = self.comm.world_size
        per_rank = -(-self.cfg.rar_candidates // world)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        candidates = self.problem.sample(per_rank * world, gen, dtype=torch.float64)
        mine = candidates[self.comm.rank * per_rank : (self.comm.rank + 1) * per_rank].to(
            self.device, self._dtype
        )
        residual = model.residual(mine).detach().abs().reshape(-1)
        everyone = self.comm.gather_cat(residual).double().cpu()
        worst = torch.topk(everyone, k=min(self.cfg.rar_points, everyone.numel())).indices
        return torch.cat([self._points, candidates[worst]])

    # --- checkpoints ----------------------------------------------------------------

    def _save(
        self,
        model: PINN,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        *,
        step: int,
        phase: str,
        history: History,
    ) -> None:
        if self.checkpointer is None:
            return
        if self.comm.rank == 0:
            state = {
                "phase": phase,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "points": self._points,
                "history": history.as_state(),
            }
            self.checkpointer.save(state, step=step)
        self.last_saved = step

    def _check_finite(self, step: int) -> None:
        if math.isfinite(self.last_loss):
            return
        where = self.checkpointer.location if self.checkpointer is not None else "(checkpoints off)"
        kept = (
            f"the last good checkpoint (step {self.last_saved}) is kept in {where}"
            if self.last_saved is not None
            else "no checkpoint had been saved yet"
        )
        raise DivergedError(
            f"the loss became {self.last_loss} at step {step}; training stopped and {kept}. "
            "Lower --lr, or use --precision float64"
        )

    def _safe_point(
        self,
        model: PINN,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        *,
        step: int,
        phase: str,
        history: History,
        bar: TrainingBar,
        force_eval: bool = False,
    ) -> None:
        """Bookkeeping after a step: NaN check, evaluation, progress, checkpoint, stop request."""
        self._check_finite(step)
        history.loss.append([step, self.last_loss])
        if self.evaluator is not None and (step % self.cfg.eval_every == 0 or force_eval):
            self.last_error = self.evaluator.relative_l2(model, self._dtype)
            history.error.append([step, history.train_s, self.last_error])
        bar.update(step=step, loss=self.last_loss, error=self.last_error, phase=phase)
        if self.on_step is not None:
            self.on_step(step)
        every = self.cfg.checkpoint_every
        if step // every > self._previous_step // every:  # crossed a multiple of checkpoint_every
            self._save(model, optimizer, scheduler, step=step, phase=phase, history=history)
        self._previous_step = step
        stopping = self.comm.any(self.stop is not None and self.stop.requested)
        if stopping:
            if self.last_saved != step:
                self._save(model, optimizer, scheduler, step=step, phase=phase, history=history)
            self.comm.barrier()
            self.log(f"stop requested: checkpoint saved at step {step}")
            raise Preempted()

    # --- the run ----------------------------------------------------------------------

    def _lbfgs(self, model: PINN) -> torch.optim.LBFGS:
        return torch.optim.LBFGS(
            model.parameters(),
            lr=1.0,
            max_iter=self.cfg.lbfgs_chunk,
            history_size=self.cfg.lbfgs_history,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-16,
        )

    def _adam(self, model: PINN) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.ExponentialLR]:
        adam = torch.optim.Adam(model.parameters(), lr=self.cfg.lr)
        gamma = self.cfg.lr_decay ** (1.0 / max(self.cfg.adam_steps, 1))
        return adam, torch.optim.lr_scheduler.ExponentialLR(adam, gamma=gamma)

    def run(self) -> TrainResult:
        """Train from scratch or from the latest checkpoint; return the result."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        model = PINN(self.problem, width=cfg.width, depth=cfg.depth)
        points = self.problem.sample(cfg.points, torch.Generator().manual_seed(cfg.seed), dtype=torch.float64)
        history = History()
        step, phase = 0, "adam"
        loaded = self.checkpointer.load() if (self.checkpointer is not None and self.resume) else None
        resumed_from = None
        if loaded is not None:
            step, state = loaded
            phase = state["phase"]
            points = state["points"]
            history = History.from_state(state["history"])
            resumed_from = step
            self.last_saved = step
            self._previous_step = step
        model.to(self.device, cfg.dtype(phase))
        self._shards(points, cfg.dtype(phase))
        optimizer: torch.optim.Optimizer
        scheduler: Any = None
        if phase == "adam":
            optimizer, scheduler = self._adam(model)
        else:
            optimizer = self._lbfgs(model)
        if loaded is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            self.log(f"resumed from the checkpoint at step {step} ({phase})")
        converged = False
        title = f"{self.problem.name} x{self.comm.world_size}"
        with TrainingBar(total=cfg.total_steps, start=step, enabled=self.progress, title=title) as bar:
            while phase == "adam" and step < cfg.adam_steps:
                started = time.perf_counter()
                if cfg.rar_every and step > 0 and step % cfg.rar_every == 0:
                    self._shards(self._refine(model, step), self._dtype)
                    history.refinements += 1
                self._loss_and_grad(model)
                # The Adam phase's optimiser (narrowed for mypy: L-BFGS's step() needs a closure).
                assert isinstance(optimizer, torch.optim.Adam)
                optimizer.step()
                assert scheduler is not None
                scheduler.step()
                elapsed = time.perf_counter() - started
                history.train_s += elapsed
                history.adam_s += elapsed
                step += 1
                self._safe_point(
                    model, optimizer, scheduler, step=step, phase=phase, history=history, bar=bar
                )
            if phase == "adam" and cfg.lbfgs_steps > 0:
                phase = "lbfgs"
                model.to(self.device, cfg.dtype(phase))
                self._shards(self._points, cfg.dtype(phase))
                optimizer, scheduler = self._lbfgs(model), None

            def closure() -> torch.Tensor:
                return self._loss_and_grad(model)

            while phase == "lbfgs" and step < cfg.total_steps:
                started = time.perf_counter()
                chunk = min(cfg.lbfgs_chunk, cfg.total_steps - step)
                if cfg.rar_every and cfg.rar_lbfgs:
                    if step > cfg.adam_steps and step % cfg.rar_every == 0:
                        # New points change the loss: L-BFGS starts a fresh curvature history.
                        self._shards(self._refine(model, step), self._dtype)
                        history.refinements += 1
                        optimizer = self._lbfgs(model)
                    # End chunks on multiples of rar_every, so refinements land on the same steps
                    # in an interrupted-and-resumed run as in an uninterrupted one.
                    chunk = min(chunk, cfg.rar_every - step % cfg.rar_every)
                optimizer.param_groups[0]["max_iter"] = chunk
                # Room for the line search's extra evaluations: running out of them is not convergence.
                optimizer.param_groups[0]["max_eval"] = chunk * 20
                before = self._lbfgs_state(optimizer, "n_iter")
                evaluations = self._lbfgs_state(optimizer, "func_evals")
                optimizer.step(closure)
                elapsed = time.perf_counter() - started
                history.train_s += elapsed
                history.lbfgs_s += elapsed
                history.lbfgs_evaluations += self._lbfgs_state(optimizer, "func_evals") - evaluations
                done = self._lbfgs_state(optimizer, "n_iter") - before
                step += done
                converged = done < chunk
                self._safe_point(
                    model,
                    optimizer,
                    scheduler,
                    step=step,
                    phase=phase,
                    history=history,
                    bar=bar,
                    force_eval=converged or step % cfg.eval_every < done,
                )
                if converged:
                    self.log(f"L-BFGS converged at step {step} (gradient or loss change below tolerance)")
                    break
        if self.evaluator is not None and (not history.error or history.error[-1][0] != step):
            self.last_error = self.evaluator.relative_l2(model, self._dtype)
            history.error.append([step, history.train_s, self.last_error])
        return TrainResult(
            model=model,
            points=self._points,
            history=history,
            steps=step,
            resumed_from=resumed_from,
            converged_early=converged,
            device=self.device,
            dtype=self._dtype,
        )

    @staticmethod
    def _lbfgs_state(optimizer: torch.optim.Optimizer, key: str) -> int:
        """Return L-BFGS's running count 'n_iter' (iterations) or 'func_evals' (evaluations)."""
        params = optimizer.param_groups[0]["params"]
        state = optimizer.state.get(params[0], {})
        return int(state.get(key, 0))
