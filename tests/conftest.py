"""What the tests share: one CLI helper, tiny corpora (tests/toydata.py), one tiny trained model per task (trained
once per session, through the real command line), and the named corpora of the data folders (skipped where absent).

The trained models are read-only for the tests: a test that resumes or changes a run copies it first
(`Trained.copy_to`).
"""
from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.toydata import EMAILS, TAGGED, TEXT, WORDS, conll_text, jsonl_records


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tensors here are tiny: intra-op threads only add overhead, and stall badly while other work holds the cores.
    Training commands set their own count; `Cli.run` restores this one after them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the command line -----------------------------------------------------------------------------------------

class Cli:
    """The `nmt` app through Typer's CliRunner (stdout and stderr kept apart)."""

    runner = CliRunner()

    @classmethod
    def run(cls, *args, input=None):
        """Invoke the app; `train` commands set torch's thread count, so the test process's count is restored."""
        from nmt.cli import app
        threads, asked = torch.get_num_threads(), os.environ.get("NMT_THREADS")
        try:
            return cls.runner.invoke(app, [str(a) for a in args], input=input)
        finally:
            torch.set_num_threads(threads)
            if asked is None:                            # `--threads N` sets NMT_THREADS for the command
                os.environ.pop("NMT_THREADS", None)
            else:
                os.environ["NMT_THREADS"] = asked

    @staticmethod
    def one_line_error(result, *needles):
        """Exit status 1 and exactly one `error:` line on stderr holding each needle, no traceback."""
        assert result.exit_code == 1, result.output
        message = result.stderr.strip()
        assert message.startswith("error:") and "\n" not in message and "Traceback" not in result.output, \
            result.output
        for needle in needles:
            assert needle in message, message


@pytest.fixture(scope="session")
def cli() -> type[Cli]:
    return Cli


# --- tiny corpora -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def parallel_files(tmp_path_factory) -> Path:
    """A tiny synthetic parallel corpus: the target is the source reversed and upper-cased."""
    root = tmp_path_factory.mktemp("parallel")
    rng = random.Random(0)
    for split, n in (("train", 300), ("valid", 20)):
        src = [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(n)]
        (root / f"{split}.src").write_text("\n".join(src) + "\n", encoding="utf-8")
        (root / f"{split}.tgt").write_text("\n".join(" ".join(reversed(s.split())).upper() for s in src) + "\n",
                                           encoding="utf-8")
    return root


# --- one tiny trained model per task ----------------------------------------------------------------------------

@dataclass
class Trained:
    run: Path           # the run folder: metrics.jsonl, last.pt, best.pt (and step-N.pt where kept)
    data: Path          # the folder of the files it was trained on

    @property
    def checkpoint(self) -> Path:
        return self.run / "best.pt"

    def copy_to(self, folder: Path) -> Path:
        """A copy of the run folder, for tests that resume or change it."""
        return Path(shutil.copytree(self.run, folder))


def _train(*args) -> None:
    result = Cli.run("train", *args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def translate_model(parallel_files, tmp_path_factory) -> Trained:
    """40 steps, validated at 20 and 40, both validations kept as step-N.pt."""
    out = tmp_path_factory.mktemp("translate") / "run"
    d = parallel_files
    _train("translate", "--train-src", d / "train.src", "--train-tgt", d / "train.tgt", "--valid-src",
           d / "valid.src", "--valid-tgt", d / "valid.tgt", "--preset", "tiny", "--max-steps", 40,
           "--set", "train.eval_every=20", "--set", "tokenizer.vocab_size=120", "--set", "train.keep_checkpoints=5",
           "--set", "train.threads=1", "--out", out)
    return Trained(out, d)


@pytest.fixture(scope="session")
def charlm_model(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("charlm")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    _train("charlm", "--text-file", root / "text.txt", "--preset", "tiny", "--max-steps", 20,
           "--set", "train.eval_every=10", "--set", "data.streams=2", "--set", "train.threads=1", "--out", root / "run")
    return Trained(root / "run", root)


@pytest.fixture(scope="session")
def tag_model(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("tag")
    (root / "train.txt").write_text(conll_text(TAGGED * 4), encoding="utf-8")
    (root / "dev.txt").write_text(conll_text(TAGGED[:3]), encoding="utf-8")
    _train("tag", "--train-file", root / "train.txt", "--dev-file", root / "dev.txt", "--preset", "tiny",
           "--max-steps", 30, "--out", root / "run", "--set", "train.threads=1", "--set", "train.optim.lr=0.02",
           "--set", "model.dropout=0", "--set", "model.word_dropout=0")
    return Trained(root / "run", root)


@pytest.fixture(scope="session")
def summarize_model(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("summarize")
    (root / "train.jsonl").write_text(jsonl_records(EMAILS * 2), encoding="utf-8")
    (root / "dev.jsonl").write_text(jsonl_records(EMAILS[:3]), encoding="utf-8")
    _train("summarize", "--train-jsonl", root / "train.jsonl", "--dev-jsonl", root / "dev.jsonl", "--src-field",
           "email_body", "--tgt-field", "subject_line", "--preset", "tiny", "--max-steps", 20, "--out", root / "run",
           "--set", "train.threads=1", "--set", "data.min_count=1")
    return Trained(root / "run", root)


@pytest.fixture(scope="session")
def trained_models(translate_model, charlm_model, tag_model, summarize_model) -> dict[str, Trained]:
    """Every task's tiny model, by task name."""
    return {"translate": translate_model, "charlm": charlm_model, "tag": tag_model, "summarize": summarize_model}


# --- named corpora ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shared_data():
    """`shared_data(corpus, *parts)`: the path of a file of a named corpus, found where the command line looks
    (nmt.corpora.data_root: $NMT_DATA, data/, ../shared/data); the test is skipped when it is absent."""
    from nmt.corpora import data_root
    from nmt.data import DataError

    def find(corpus: str, *parts: str) -> Path:
        try:
            path = data_root(corpus).joinpath(corpus, *parts)
        except DataError as err:
            pytest.skip(str(err))
        if not path.exists():
            pytest.skip(f"{path} not present")
        return path
    return find


@pytest.fixture(scope="session")
def shipped():
    """`shipped(task)`: the shipped checkpoint of a task (checkpoints/), the test skipped when it is absent."""
    def find(task: str) -> Path:
        from nmt.tasks import SHIPPED as paths
        if not paths[task].exists():
            pytest.skip(f"{paths[task]} not present")
        return paths[task]
    return find
