import time, sys, threading, cProfile, pstats, io
import pytest
from gui_helpers import cells, dock, wait_idle
from test_responsiveness import TickRecorder

def test_diag(viewer, qtbot, notes):
    image, labels = cells((192, 192))
    viewer.add_image(image, name="cells")
    viewer.add_labels(labels, name="cells mask")
    widget = dock(viewer, "Train UNet")
    widget._steps.value = 2
    widget._epochs.value = 1
    T0 = time.perf_counter()
    rec = TickRecorder()
    rec.start()
    pr = cProfile.Profile()
    pr.enable()
    assert widget.start()
    pr.disable()
    print(f"start() took {1000*(time.perf_counter()-T0):.0f} ms")
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(15); print(s.getvalue()[:3000])
    wait_idle(qtbot, widget, timeout=300_000)
    rec.stop()
    gaps = sorted([(b - a, a - T0) for a, b in zip(rec.ticks, rec.ticks[1:])], reverse=True)[:8]
    for g, at in gaps:
        print(f"gap {1000*g:.0f} ms starting at {at:.2f}")
