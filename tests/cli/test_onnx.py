"""`export --format onnx` and `--runtime onnx` through the real command line: the export folder, the same output as
the torch runtime for every task, and each bad input as one `error:` line."""
import json

import pytest

from nmt import checkpoint as ckpt_io

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def translator_export(translate_model, tmp_path_factory):
    from tests.conftest import Cli
    out = tmp_path_factory.mktemp("onnx") / "t.onnx"
    result = Cli.run("export", translate_model.checkpoint, out, "--format", "onnx")
    assert result.exit_code == 0, result.output
    return out


def test_export_writes_the_graphs_and_a_checkpoint_without_their_weights(translator_export, translate_model):
    assert sorted(p.name for p in translator_export.iterdir()) == ["decoder.onnx", "encoder.onnx", "nmt.pt"]
    companion = ckpt_io.load(translator_export / "nmt.pt")
    original = ckpt_io.load(translate_model.checkpoint)
    assert companion.task == "translate" and companion.model == {} and companion.train_state is None
    assert companion.config == original.config and companion.tokenizers.keys() == original.tokenizers.keys()
    assert companion.meta["onnx"] == "encoder.onnx decoder.onnx"


def test_translate_on_onnx_runtime_prints_what_torch_prints(cli, translator_export, translate_model):
    for args in (["--beam", 1], ["--beam", 3, "--n-best", 2, "--json"]):
        want = cli.run("translate", "-m", translate_model.checkpoint, *args, "der hund läuft", "", "ein kind")
        got = cli.run("translate", "--runtime", "onnx", "-m", translator_export, *args, "der hund läuft", "",
                      "ein kind")
        assert got.exit_code == 0, got.output
        if "--json" in args:
            rows, expected = json.loads(got.stdout), json.loads(want.stdout)
            assert [[t["text"] for t in r["translations"]] for r in rows] == \
                   [[t["text"] for t in r["translations"]] for r in expected]
            assert all(abs(r["confidence"] - e["confidence"]) < 1e-4 for r, e in zip(rows, expected) if r["source"])
        else:
            assert got.stdout == want.stdout
    again = cli.run("translate", "--runtime", "onnx", "-m", translator_export / "decoder.onnx", "ein kind")
    assert again.exit_code == 0, again.output          # a graph file stands for its folder


def test_tag_and_generate_on_onnx_runtime(cli, tag_model, charlm_model, tmp_path):
    assert cli.run("export", tag_model.checkpoint, tmp_path / "tag.onnx", "--format", "onnx").exit_code == 0
    line = "John Smith lives in New York ."
    want = cli.run("tag", "-m", tag_model.checkpoint, "--json", line)
    got = cli.run("tag", "--runtime", "onnx", "-m", tmp_path / "tag.onnx", "--json", line)
    assert got.exit_code == 0 and json.loads(got.stdout) == json.loads(want.stdout), got.output
    assert cli.run("export", charlm_model.checkpoint, tmp_path / "lm.onnx", "--format", "onnx").exit_code == 0
    args = ["--temperature", 0, "--length", 40, "--prime", "Th", "--num-samples", 5, "--json"]
    want = cli.run("generate", "-m", charlm_model.checkpoint, *args)
    got = cli.run("generate", "--runtime", "onnx", "-m", tmp_path / "lm.onnx", *args)
    assert got.exit_code == 0 and got.stdout == want.stdout, got.output


def test_classify_and_forecast_on_onnx_runtime(cli, tmp_path):
    from nmt.models.forecast import Forecaster
    from nmt.tasks.forecast import ForecastTask, Scaler
    from nmt.timeseries import read_csv, split_ends, split_series
    from tests.models.test_onnx import classifier_checkpoint
    from tests.tasks.test_forecast import series_csv, tiny_setup
    ckpt_io.save(tmp_path / "c.pt", classifier_checkpoint())
    assert cli.run("export", tmp_path / "c.pt", tmp_path / "c.onnx", "--format", "onnx").exit_code == 0
    want = cli.run("classify", "-m", tmp_path / "c.pt", "--json", "a good film", "bad")
    got = cli.run("classify", "--runtime", "onnx", "-m", tmp_path / "c.onnx", "--json", "a good film", "bad")
    assert got.exit_code == 0, got.output
    assert [r["label"] for r in json.loads(got.stdout)] == [r["label"] for r in json.loads(want.stdout)]
    csv = series_csv(tmp_path / "s.csv", rows=120)
    parts = split_series(read_csv(csv), split_ends(120), 24, 12)
    setup = tiny_setup()
    setup.model.channels = 3
    task = ForecastTask(setup, Scaler.fit(parts["train"].values), parts["train"], parts["val"])
    ckpt_io.save(tmp_path / "f.pt", task.make_checkpoint(Forecaster(setup.model).eval()))
    assert cli.run("export", tmp_path / "f.pt", tmp_path / "f.onnx", "--format", "onnx").exit_code == 0
    want = json.loads(cli.run("forecast", "-m", tmp_path / "f.pt", "--csv", csv, "--json").stdout)
    got = cli.run("forecast", "--runtime", "onnx", "-m", tmp_path / "f.onnx", "--csv", csv, "--json")
    assert got.exit_code == 0, got.output
    forecast, expected = json.loads(got.stdout)["forecast"], want["forecast"]
    assert len(forecast) == len(expected) == 12
    assert all(abs(a - b) < 1e-3 for row, exp in zip(forecast, expected) for a, b in zip(row, exp))


def test_bad_input_is_one_line(cli, translator_export, translate_model, tmp_path, monkeypatch):
    import shutil
    ckpt = translate_model.checkpoint
    one_line = cli.one_line_error
    one_line(cli.run("translate", "--runtime", "onnx", "-m", ckpt, "x"), "is an nmt checkpoint, not an ONNX export")
    one_line(cli.run("translate", "--runtime", "onnx", "x"), "--runtime onnx needs --model")
    one_line(cli.run("translate", "--runtime", "onnx", "-m", tmp_path / "nowhere", "x"), "not found")
    one_line(cli.run("translate", "--runtime", "gpu", "-m", ckpt, "x"), "--runtime must be torch or onnx")
    one_line(cli.run("tag", "--runtime", "onnx", "-m", translator_export, "x"), "'translate' model, not a 'tag'")
    broken = shutil.copytree(translator_export, tmp_path / "broken.onnx")
    (broken / "decoder.onnx").write_bytes(b"not a protobuf at all")
    one_line(cli.run("translate", "--runtime", "onnx", "-m", broken, "x"), "decoder.onnx is not a readable ONNX model")
    (broken / "decoder.onnx").unlink()
    one_line(cli.run("translate", "--runtime", "onnx", "-m", broken, "x"), "decoder.onnx is missing")
    stray = tmp_path / "stray.onnx"
    stray.write_bytes(b"\x08\x07")
    one_line(cli.run("translate", "--runtime", "onnx", "-m", stray, "x"), "is not an ONNX export folder")
    ckpt_io.save(tmp_path / "s.pt", ckpt_io.Checkpoint("summarize", {}, {}))
    one_line(cli.run("export", tmp_path / "s.pt", tmp_path / "s.onnx", "--format", "onnx"),
             "'summarize' models have no ONNX export")
    one_line(cli.run("export", ckpt, tmp_path / "x", "--format", "tflite"), "--format must be pt or onnx")
    one_line(cli.run("export", ckpt, tmp_path / "q.onnx", "--format", "onnx", "--quantize", "int8"), "--quantize")
    assert cli.run("export", ckpt, tmp_path / "int8.pt", "--quantize", "int8").exit_code == 0
    one_line(cli.run("export", tmp_path / "int8.pt", tmp_path / "int8.onnx", "--format", "onnx"), "quantised (int8)")
    one_line(cli.run("export", ckpt, tmp_path / "x", "--format", "onnx", "--score", "bleu=1"), "--score")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    one_line(cli.run("export", ckpt, tmp_path / "taken", "--format", "onnx"), "is not an ONNX export")
    import nmt.onnx
    monkeypatch.setattr(nmt.onnx, "missing", lambda module: module)          # as if none were installed
    one_line(cli.run("translate", "--runtime", "onnx", "-m", translator_export, "x"),
             "--runtime onnx needs onnxruntime: pip install -e '.[onnx]'")
    one_line(cli.run("export", ckpt, tmp_path / "y.onnx", "--format", "onnx"), "--format onnx needs onnx")
