"""The task interface (nmt/tasks/base.py, nmt/tasks/__init__.py): every task module provides the same pieces,
`nmt.tasks.load` gives each checkpoint its own runner, and foreign or other-task files are refused in one line."""
import inspect

import pytest

from nmt import checkpoint as ckpt_io
from nmt import tasks
from nmt.config import ConfigError
from nmt.tasks.base import Runner, Task

RUNNERS = {"translate": "Translator", "charlm": "TextGenerator", "tag": "NERTagger", "summarize": "Summarizer"}


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_task_module_provides_the_interface(name):
    module = tasks.module(name)
    assert module.TASK == name and tasks.module(name) is module
    assert inspect.isclass(module.SETUP) and {"base", "tiny"} <= set(module.PRESETS)
    assert isinstance(tasks.make_setup(name, "tiny"), module.SETUP)
    # the runner: a concrete Runner of this task
    assert issubclass(module.RUNNER, Runner) and not inspect.isabstract(module.RUNNER)
    assert module.RUNNER.task == name
    # the training side: exactly one concrete Task subclass of this task
    task_classes = [c for c in vars(module).values()
                    if inspect.isclass(c) and issubclass(c, Task) and c is not Task and c.__module__ == module.__name__]
    assert len(task_classes) == 1, task_classes
    (task_cls,) = task_classes
    assert task_cls.name == name and not inspect.isabstract(task_cls)
    if task_cls.shards_itself:                             # a task that shards itself says how
        assert task_cls.shard is not Task.shard
    # train(setup, train, valid, run_dir, callbacks=(), meta=None)
    params = list(inspect.signature(module.train).parameters.values())
    assert len(params) == 6 and [p.name for p in params[3:]] == ["run_dir", "callbacks", "meta"]
    assert params[0].name == "setup" and params[4].default == () and params[5].default is None


def test_the_four_runners_by_name():
    for name, runner in RUNNERS.items():
        assert tasks.module(name).RUNNER.__name__ == runner


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown task 'forcast' .*known: translate"):
        tasks.module("forcast")


@pytest.mark.parametrize("name", list(RUNNERS))
def test_load_gives_each_checkpoint_its_runner(trained_models, name):
    path = trained_models[name].checkpoint
    runner = tasks.load(path)
    assert type(runner) is tasks.module(name).RUNNER
    assert runner.checkpoint is not None and runner.checkpoint.task == name
    assert type(tasks.module(name).RUNNER.load(path)) is type(runner)


@pytest.mark.parametrize("name", list(RUNNERS))
def test_a_runner_refuses_another_tasks_checkpoint(trained_models, name):
    other = next(n for n in RUNNERS if n != name)
    with pytest.raises(ckpt_io.CheckpointError) as err:
        tasks.module(name).RUNNER.load(trained_models[other].checkpoint)
    assert f"is a '{other}' checkpoint, not a '{name}' one" in str(err.value) and "\n" not in str(err.value)


def test_load_refuses_a_checkpoint_of_no_task(tmp_path):
    from nmt.tokenizers import CharTokenizer, save_tokenizer
    save_tokenizer(tmp_path / "chars.pt", CharTokenizer.train(["abc"]), {})
    with pytest.raises(ckpt_io.CheckpointError, match="'tokenizer' checkpoint, which is not a task nmt can run"):
        tasks.load(tmp_path / "chars.pt")
    ckpt_io.save(tmp_path / "alien.pt", ckpt_io.Checkpoint("alien", {}, {}))
    with pytest.raises(ckpt_io.CheckpointError, match="'alien' checkpoint"):
        tasks.load(tmp_path / "alien.pt")
    with pytest.raises(ckpt_io.CheckpointError, match="not found"):
        tasks.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("name", list(RUNNERS))
def test_a_checkpoint_whose_parts_do_not_fit_is_one_checkpoint_error(trained_models, tmp_path, name):
    """Weights of another model or an unknown config key: one line naming the file, no traceback."""
    ckpt = ckpt_io.load(trained_models[name].checkpoint)
    first = next(iter(ckpt.model))
    broken = ckpt_io.Checkpoint(ckpt.task, ckpt.config, {**ckpt.model, first: ckpt.model[first][:1]},
                                ckpt.tokenizers, ckpt.scores, ckpt.meta)
    ckpt_io.save(tmp_path / "shape.pt", broken)
    with pytest.raises(ckpt_io.CheckpointError, match="shape.pt") as err:
        tasks.load(tmp_path / "shape.pt")
    assert "\n" not in str(err.value)
    config = {**ckpt.config, "model": {**ckpt.config["model"], "no_such_key": 1}}
    ckpt_io.save(tmp_path / "config.pt", ckpt_io.Checkpoint(ckpt.task, config, ckpt.model, ckpt.tokenizers))
    with pytest.raises(ckpt_io.CheckpointError, match="no_such_key"):
        tasks.load(tmp_path / "config.pt")


@pytest.mark.parametrize("name", list(RUNNERS))
def test_the_shipped_checkpoints_load(shipped, name):
    """The shipped models are format version 1 files: their retired keys are dropped on load."""
    runner = tasks.load(shipped(name))
    assert type(runner) is tasks.module(name).RUNNER and runner.checkpoint.task == name


def test_batch_work_pauses_the_cyclic_collector_and_restores_it():
    import gc

    import pytest

    from nmt.tasks.base import batch_work
    seen = []

    @batch_work
    def work(fail=False):
        seen.append(gc.isenabled())
        if fail:
            raise ValueError("bad input")
        return 7
    assert gc.isenabled()
    assert work() == 7 and seen == [False] and gc.isenabled()
    with pytest.raises(ValueError):
        work(fail=True)
    assert gc.isenabled()
    gc.disable()
    try:                                     # a caller that paused it itself keeps it paused
        work()
        assert not gc.isenabled()
    finally:
        gc.enable()
