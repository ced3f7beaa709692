"""Rich rendering of training progress: a trainer callback, kept out of the trainer (which never prints)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class RichProgress:
    """Progress bar with loss, perplexity, tokens/s and learning rate; a table of samples at each validation."""

    def __init__(self, console: Console, total_steps: int = 0, sample_headers=("input", "reference", "output"),
                 best=None):
        """`best` words the best score so far, in the units of the task's metric (e.g. "best validation loss
        1.4188"); by default the raw score (higher is better)."""
        self.console, self.total, self.headers = console, total_steps or None, sample_headers
        self.best = best or (lambda score: f"best {score:.2f}")
        self.progress = Progress(TextColumn("step {task.completed}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), console=console, transient=False)
        self.task = None

    def on_note(self, text: str) -> None:
        self.console.print(f"[yellow]note:[/yellow] {escape(text)}")

    def on_start(self, state) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.total, completed=state.step,
                                           info="resumed" if state.step else "")

    def on_log(self, record: dict) -> None:
        info = (f"loss {record['loss']:.3f}  ppl {record['ppl']:.1f}  {record['tokens_per_s']:.0f} tok/s  "
                f"lr {record['lr']:.2e}  epoch {record['epoch']}")
        self.progress.update(self.task, completed=record["step"], info=info)

    def on_validate(self, record: dict, samples) -> None:
        shown = {k: v for k, v in record.items() if k not in ("type", "time", "best", "epoch", "score")}
        text = "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
        self.progress.console.print(f"[bold]validation[/bold] {text}  ({self.best(record['best'])})")
        if samples:
            table = Table(show_lines=False)
            for h in self.headers[: len(samples[0])]:
                table.add_column(h, overflow="fold")
            for row in samples:
                table.add_row(*[escape(str(x)) for x in row])     # text, never markup: '[person ...]'
            self.progress.console.print(table)

    def on_end(self, state) -> None:
        self.progress.stop()

