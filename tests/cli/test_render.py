"""nmt/cli/render.py and the progress callback (nmt/progress.py): what the terminal shows."""
import io

from rich.console import Console

from nmt.cli import render
from nmt.tasks.tag import render_plain


def printed(renderable, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width)
    console.print(renderable)
    return console.file.getvalue()


def test_sparkline_maps_values_to_blocks():
    assert render.sparkline([1, 2, 3, 4], log=False) == "▁▃▆█"                    # 0, 2.7, 5.3, 8 of 8
    assert render.sparkline([1e-6, 1e-3, 1.0]) == "▁▅█"                        # log10 scale by default
    assert render.sparkline([5, 5, 5], low=0, high=10, log=False) == "▅▅▅"
    assert render.sparkline([-1, 20], low=0, high=10, log=False) == "▁█"         # clipped to the range
    assert render.sparkline([]) == ""


def test_table_aligns_numbers_right():
    table = render.table("t", ["name", "score"], [("a", 1.5), ("bb", 10)])
    assert [c.justify for c in table.columns] == ["left", "right"]
    assert all(c.justify == "left" for c in render.table("t", ["a", "b"], [], right=False).columns)
    assert "10" in printed(table)


def test_shaded_matrix_escapes_pieces_and_leaves_tiny_weights_blank():
    matrix = render.shaded_matrix([[0.9, 0.001], [0.5, 0.5]], ["[b]", "x"], ["y", "</s>"], "title [/i]")
    text = printed(matrix)
    assert "[b]" in text and "title [/i]" in text and "</s>" in text
    assert "0.90" in text and "0.50" in text and "0.00" not in text


def test_show_entities_prints_each_line_and_a_table(monkeypatch):
    console = Console(file=io.StringIO(), width=120)
    monkeypatch.setattr(render, "out", console)
    render.show_entities([{"text": "Angela Merkel in [Paris]", "entities": [
        {"text": "Angela Merkel", "type": "PER", "start": 0, "end": 13},
        {"text": "[Paris]", "type": "LOC", "start": 17, "end": 24}]}, {"text": "nothing", "entities": []}])
    shown = console.file.getvalue()
    assert "Angela Merkel in [Paris]" in shown and "nothing" in shown and "PER" in shown and "24" in shown


def test_progress_samples_keep_lowercase_entity_types():
    """WNUT-17 types are lowercase: '[person Angela]' in a sample must print as text, not vanish as Rich markup."""
    from nmt.progress import RichProgress
    console = Console(file=io.StringIO(), width=200)
    progress = RichProgress(console, sample_headers=("gold", "predicted"))
    gold = render_plain(["Angela", "met", "Paris"], ["B-person", "O", "B-location"])
    progress.on_validate({"step": 1, "f1": 50.0, "best": 50.0}, [(gold, "[/b] odd")])
    shown = console.file.getvalue()
    assert "[person Angela] met [location Paris]" in shown and "[/b] odd" in shown
