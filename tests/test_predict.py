import numpy as np
import pytest

from esc50_baseline.errors import UserError
from esc50_baseline.predict import find_audio, split_windows


@pytest.mark.parametrize("length, expected", [
    (100, 1),    # all there is: one padded window
    (500, 1),    # exactly one clip
    (599, 1),    # tail of 99 < a fifth of a clip: dropped
    (600, 2),    # tail of 100 = a fifth: kept, padded
    (1500, 3),
])
def test_split_windows(length, expected):
    y = np.arange(1, length + 1, dtype=np.float32)
    windows = split_windows(y, 500)
    assert windows.shape == (expected, 500)
    np.testing.assert_array_equal(windows[0][:min(length, 500)], y[:500])
    if length % 500 and expected > length // 500:
        assert not windows[-1][length % 500:].any()  # zero padding


def test_find_audio(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.FLAC").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.split("/")[-1] for p in find_audio(str(tmp_path))] == ["a.wav", "b.FLAC"]
    with pytest.raises(UserError, match="does not exist"):
        find_audio(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no audio"):
        find_audio(str(tmp_path / "empty"))
