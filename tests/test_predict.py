import numpy as np
import pytest

from esc50_baseline.errors import UserError
import soundfile as sf

from esc50_baseline.data.audio import AudioError, Windows
from esc50_baseline.data.audio import batches
from esc50_baseline.stages.predict import find_audio


@pytest.mark.parametrize("length, expected", [
    (100, 1),    # all there is: one padded window
    (500, 1),    # exactly one clip
    (599, 1),    # tail of 99 < a fifth of a clip: dropped
    (600, 2),    # tail of 100 = a fifth: kept, padded
    (1500, 3),   # crosses the reader's block of 10 s (1000 samples at 100 Hz)
    (2700, 6),
])
def test_windows_follow_each_other_and_pad_the_tail(tmp_path, length, expected):
    y = np.arange(1, length + 1, dtype=np.float32)
    path = str(tmp_path / "ramp.wav")
    sf.write(path, y, 100, subtype="FLOAT")
    reader = Windows(path, 100, 500)
    windows = np.stack(list(reader))
    assert windows.shape == (expected, 500) and reader.samples == length
    padded = np.zeros(expected * 500, np.float32)
    padded[:min(length, expected * 500)] = y[:expected * 500]
    np.testing.assert_array_equal(windows.ravel(), padded)


def test_windows_resample_and_mix_to_mono(tmp_path):
    t = np.arange(3 * 22050) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = str(tmp_path / "stereo.wav")
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1), 22050, subtype="FLOAT")
    reader = Windows(path, 44100, 44100)
    windows = np.stack(list(reader))
    assert windows.shape == (3, 44100) and reader.samples == 3 * 44100
    expected = 0.75 * 0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * 44100) / 44100)
    assert np.max(np.abs(windows.ravel()[1000:-1000] - expected[1000:-1000])) < 1e-3


def test_windows_of_unreadable_files_name_the_problem(tmp_path):
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="not readable as audio"):
        list(Windows(str(tmp_path / "text.wav"), 44100, 44100))
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 44100)
    with pytest.raises(AudioError, match="no samples"):
        list(Windows(str(tmp_path / "empty.wav"), 44100, 44100))


def test_batches():
    assert list(batches(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches([], 3)) == []


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
