"""Data parallelism on PyTorch's own engine: torch.distributed process groups and DistributedDataParallel.

`torchrun --nproc-per-node N cli.py train ...` starts N copies of the same command and tells each its RANK,
WORLD_SIZE and LOCAL_RANK (plus the rendezvous address) through the environment. `init` reads them and joins the
process group: gloo on CPU, nccl on GPUs. Without torchrun (no WORLD_SIZE, or 1) nothing is initialised and every
helper here is a no-op, so the single-process path pays nothing.

The trainer uses this module for everything that crosses processes: sums of per-step counts, the decisions of
rank 0 (stop, early stopping, patience) sent to the others, and the random states gathered for checkpoints.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nmt.config import ConfigError


@dataclass(frozen=True)
class Context:
    rank: int = 0               # this process among all of them
    world: int = 1              # number of processes
    local_rank: int = 0         # this process on its machine (picks the GPU)
    local_world: int = 1        # processes on this machine (share its cores)
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (a GPU when there is one) -> a device; ConfigError if it is absent."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA GPU is available to this torch build")
        return torch.device(name if ":" in name else f"cuda:{local_rank % torch.cuda.device_count()}")
    raise ConfigError(f"unknown device '{name}' (cpu | cuda | cuda:N | auto)")


def init(device: str = "cpu") -> Context:
    """Join the process group torchrun describes (if any) and return this process's place in it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Context(rank, world, local_rank, local_world, dev)


def shutdown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], ctx: Context) -> list[float]:
    """Element-wise sum over all processes (float64, so token counts stay exact)."""
    if not ctx.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device(ctx))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast(obj, ctx: Context):
    """Rank 0's `obj` on every process (any picklable object)."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_comm_device(ctx))
    return box[0]


def gather(obj, ctx: Context) -> list:
    """Every process's `obj`, in rank order, on every process."""
    if not ctx.distributed:
        return [obj]
    boxes = [None] * ctx.world
    dist.all_gather_object(boxes, obj)
    return boxes


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def _comm_device(ctx: Context) -> torch.device:
    return ctx.device if ctx.device.type == "cuda" else torch.device("cpu")


def to_device(obj, device: torch.device):
    """Move the tensors inside a batch (tensor, dataclass, list, tuple or dict) to `device`."""
    if device.type == "cpu":
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: to_device(getattr(obj, f.name), device)
                                          for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(x, device) for x in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj
