"""scripts/bench_scale.py's summary: the DIIT / source ratio of each streamed path, medians by hand."""
import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _bench(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS.parent))
    monkeypatch.delitem(sys.modules, "bench_scale", raising=False)
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("bench_scale")


def _run(kind, path, eps, rows=1000):
    return {"kind": kind, "path": path, "rows": rows, "examples_per_second": eps, "peak_rss_mb": 100.0}


def test_each_shuffle_buffer_gets_its_own_diit_to_source_ratio(monkeypatch, capsys):
    bench = _bench(monkeypatch)
    runs = [_run("source", "stream", 100.0), _run("diit", "stream", 40.0),
            _run("source", "stream-sb10000", 100.0), _run("diit", "stream-sb10000", 50.0),
            _run("source", "stream", 120.0), _run("diit", "stream", 42.0),
            _run("source", "stream-sb10000", 80.0), _run("diit", "stream-sb10000", 60.0)]
    report = {"trainers": runs}
    bench.summarize(report)
    ratios = report["summary"]["diit_vs_source"]
    assert ratios[1000] == round(41.0 / 110.0, 3)                  # medians of the default path: 41 / 110
    assert ratios["1000_stream-sb10000"] == round(55.0 / 90.0, 3)  # and of the 10,000-row window: 55 / 90
    assert "with shuffle_buffer 10000: 0.61" in capsys.readouterr().out
