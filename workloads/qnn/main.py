"""Entry point: ``python -m workloads.qnn [--option value ...]`` trains and tests the hybrid classifier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from workloads.common.checkpoint import Preempted
from workloads.common.entry import RunContext, WorkloadError, run
from workloads.common.sagemaker import channel_dir
from workloads.qnn.circuit import CircuitError, hybrid_circuit
from workloads.qnn.data import DataError, TwoClassData, load_digits_data, load_mnist_data
from workloads.qnn.idx import IdxError
from workloads.qnn.layer import QuantumLayer, ShotSampler, torch_executor
from workloads.qnn.model import HybridNet, ShapeError
from workloads.qnn.plots import plot_training
from workloads.qnn.qutrunk_backend import BackendUnavailableError, qutrunk_executor
from workloads.qnn.spec import SPEC, Args
from workloads.qnn.train import TrainState, evaluate, run_epoch

# Arguments that change what a checkpoint means; epochs may grow, the device may change.
FINGERPRINT_KEYS = (
    "dataset", "data_uri", "digits", "train_per_class", "test_per_class", "batch_size", "learning_rate",
    "n_qubits", "shots", "shift_rad", "backend", "loss", "dropout", "conv_padding", "seed",
)  # fmt: skip


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the workload's own input errors into WorkloadError (exit 2, message, no traceback)."""
    try:
        yield
    except (DataError, IdxError, ShapeError, CircuitError, BackendUnavailableError) as err:
        raise WorkloadError(str(err)) from None


def pick_device(choice: str) -> torch.device:
    """Return the torch device for --device (auto: CUDA when available)."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise WorkloadError(
            "--device cuda was asked for, but torch sees no CUDA device; use --device auto or --device cpu"
        )
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def load_data(args: Args) -> TwoClassData:
    """Load the two-class data the arguments ask for."""
    if args.dataset == "digits":
        return load_digits_data(
            digits=args.digits, train_per_class=args.train_per_class, test_per_class=args.test_per_class
        )
    uri = args.data_uri
    if not uri:
        channel = channel_dir()
        uri = str(channel) if channel is not None else ""
    return load_mnist_data(
        uri=uri, digits=args.digits, train_per_class=args.train_per_class, test_per_class=args.test_per_class
    )


def build_model(args: Args, *, image_side: int, device: torch.device) -> tuple[HybridNet, ShotSampler | None]:
    """Return the hybrid network (weights seeded by args.seed) and its shot sampler (None when exact)."""
    circuit = hybrid_circuit(args.n_qubits)
    sampler_device = device if args.backend == "torch" else torch.device("cpu")
    sampler = ShotSampler(args.shots, seed=args.seed, device=sampler_device) if args.shots else None
    if args.backend == "qutrunk":
        executor = qutrunk_executor(circuit, sampler=sampler)
    else:
        executor = torch_executor(circuit, sampler=sampler)
    quantum = QuantumLayer(circuit, executor, shift_rad=args.shift_rad)
    torch.manual_seed(args.seed)
    model = HybridNet(
        image_side=image_side,
        quantum=quantum,
        n_qubits=args.n_qubits,
        padding=args.conv_padding,
        dropout=args.dropout,
    )
    return model.to(device), sampler


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def job(args: Args, ctx: RunContext) -> dict[str, Any]:
    """Train the hybrid classifier, evaluate it every epoch, write the history, the plot and the metrics."""
    device = pick_device(args.device)
    with user_errors():
        data = load_data(args)
        model, sampler = build_model(args, image_side=data.image_side, device=device)
    train = type(data.train)(data.train.images.to(device), data.train.labels.to(device))
    test = type(data.test)(data.test.images.to(device), data.test.labels.to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    ctx.log(
        f"qnn: {data.source}, digits {data.digits[0]} vs {data.digits[1]}, "
        f"{len(train)} train / {len(test)} test, "
        f"{args.n_qubits} qubit(s), {'exact' if args.shots == 0 else f'{args.shots} shots'}, "
        f"backend {args.backend}, device {device}, {model.padding} convolutions ({model.features} features)"
    )

    fingerprint = {k: getattr(args, k) for k in FINGERPRINT_KEYS}
    checkpointer = ctx.checkpointer(fingerprint)
    state = TrainState()
    torch.manual_seed(args.seed + 1)  # dropout stream, distinct from the weight initialisation
    loaded = checkpointer.load() if ctx.resume else None
    resumed_from = None
    if loaded is not None:
        _, saved = loaded
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = TrainState.from_dict(saved["train"])
        torch.set_rng_state(saved["rng"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"])
        if sampler is not None and saved.get("sampler") is not None:
            sampler.generator.set_state(saved["sampler"])
        resumed_from = f"epoch {state.epoch + 1}, batch {state.batch}"
        ctx.log(f"qnn: resumed from the checkpoint at {resumed_from}")

    def save() -> None:
        checkpointer.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "train": state.to_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                "sampler": sampler.generator.get_state() if sampler is not None else None,
            },
            step=state.epoch,
        )

    def stop_here() -> None:
        save()
        raise Preempted()

    n_batches = (len(train) + args.batch_size - 1) // args.batch_size
    with _progress(ctx.is_main) as progress:
        task = progress.add_task("training", total=args.epochs * n_batches, completed=state.epoch * n_batches)
        while state.epoch < args.epochs:
            progress.update(task, description=f"epoch {state.epoch + 1}/{args.epochs}")
            done = run_epoch(
                model, optimizer, train, state,
                batch_size=args.batch_size, loss=args.loss, seed=args.seed,
                should_stop=lambda: ctx.stop.requested,
                on_batch=lambda b: progress.update(task, completed=state.epoch * n_batches + b),
            )  # fmt: skip
            if not done:
                stop_here()
            result = evaluate(model, test, batch_size=max(args.batch_size, 256), loss=args.loss)
            record = {
                "epoch": float(state.epoch + 1),
                "train_loss": state.loss_sum / state.seen,
                "train_accuracy": state.correct / state.seen,
                "test_loss": result["loss"],
                "test_accuracy": result["accuracy"],
                "epoch_s": state.seconds,
            }
            state.history.append(record)
            state.epoch += 1
            state.reset_epoch()
            ctx.log(
                f"epoch {state.epoch:3d}/{args.epochs}: train loss {record['train_loss']:.4f} "
                f"acc {100 * record['train_accuracy']:.1f}% | test loss {record['test_loss']:.4f} "
                f"acc {100 * record['test_accuracy']:.1f}% | {record['epoch_s']:.2f} s"
            )
            if state.epoch % args.checkpoint_every_epochs == 0 or state.epoch == args.epochs:
                save()
            if ctx.stop.requested and state.epoch < args.epochs:
                stop_here()

    final = evaluate(model, test, batch_size=max(args.batch_size, 256), loss=args.loss)
    confusion = final["confusion"].numpy()
    history = state.history
    if ctx.is_main:
        # allow_pickle is numpy's default, named so that mypy binds the unpacked arrays to **kwds only.
        np.savez_compressed(
            ctx.out / "history.npz",
            allow_pickle=True,
            **{key: np.array([h[key] for h in history]) for key in history[0]},
            confusion=confusion,
            test_p_class1=final["p_class1"].numpy(),
            test_labels=test.labels.cpu().numpy(),
        )
        plot_training(
            ctx.out / "training.png",
            history,
            confusion,
            digits=data.digits,
            title=f"hybrid CNN + {args.n_qubits}-qubit circuit, {data.source}: "
            f"test accuracy {100 * final['accuracy']:.1f}%",
        )
    return {
        "dataset": data.source,
        "digits": list(data.digits),
        "n_train": len(train),
        "n_test": len(test),
        "device": str(device),
        "epochs": state.epoch,
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "train_loss": history[-1]["train_loss"],
        "confusion": confusion.tolist(),
        "mean_epoch_s": float(np.mean([h["epoch_s"] for h in history])),
        "history": history,
        "resumed_from": resumed_from,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the workload; return the exit code (0 ok, 2 bad input, 143 stopped after a checkpoint)."""
    return run(SPEC, job, argv)
