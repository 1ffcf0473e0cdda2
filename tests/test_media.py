"""forensics.media on small files these tests make themselves (64x48, a few dozen frames)."""
from __future__ import annotations

import pickle
import struct
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np
import pytest
from PIL import Image

from forensics.media import (Frame, FrameSample, MediaError, MediaInfo, VideoWriter, iter_frames,
                             load_image, media_kind, probe, sample_frames, write_video)
from forensics.media.reader import open_video
from forensics.media.sampling import SCAN, SEEK, choose_strategy, keyframe_interval, sample_video

W, H, N, FPS = 64, 48, 20, 10


def gradient(i: int, w: int = W, h: int = H) -> np.ndarray:
    """Frame i: a horizontal red ramp, a vertical green ramp, blue = time, and a moving white box."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                    np.full_like(xx, (i * 11) % 256)], axis=-1).astype(np.uint8)
    x0 = (i * 3) % (w - 8)
    rgb[4:12, x0:x0 + 8] = 255
    return rgb


def encode_with_pyav(path: Path, frames: int, fmt: str | None = None, codec: str = "libx264",
                     gop: int | None = None, pts_offset: int = 0, tag: str | None = None,
                     rotation_ccw: int | None = None) -> Path:
    """Videos write_video deliberately does not make (other containers, codecs, GOPs, rotations)."""
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream(codec, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    if codec == "libx264":
        stream.options = {"preset": "veryfast", "crf": "20", **({"g": str(gop)} if gop else {})}
    if tag:
        stream.codec_tag = tag
    if rotation_ccw is not None:
        stream.set_display_rotation(rotation_ccw)
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(gradient(i), format="rgb24")
        frame.pts, frame.time_base = i + pts_offset, Fraction(1, FPS)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def overwrite_middle(src: Path, dst: Path, fraction: float = 0.1, seed: int = 0) -> Path:
    data = bytearray(src.read_bytes())
    start, length = len(data) // 2, max(1, int(len(data) * fraction))
    data[start:start + length] = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def mp4_header_end(data: bytes) -> int:
    """Byte offset just past the 'moov' box (write_video puts it first: faststart)."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        pos += size
        if kind == b"moov":
            return pos
    raise AssertionError("no moov box")


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    files = {"mp4": write_video(d / "clip.mp4", (gradient(i) for i in range(N)), fps=FPS, preset="veryfast")}
    files["gop_mp4"] = encode_with_pyav(d / "gop10.mp4", 120, gop=10)
    files["ts"] = encode_with_pyav(d / "clip.ts", 120, fmt="mpegts", gop=10, pts_offset=37)
    files["xvid"] = encode_with_pyav(d / "xvid.avi", N, codec="mpeg4", tag="XVID")
    files["rotated"] = encode_with_pyav(d / "rotated.mp4", 6, rotation_ccw=90)
    return files


# --- probe / sampling ---------------------------------------------------------------------------

def test_probe_reports_written_video(media):
    info = probe(media["mp4"])
    assert isinstance(info, MediaInfo)
    assert (info.kind, info.width, info.height, info.rotation) == ("video", W, H, 0)
    assert info.fps == pytest.approx(FPS)
    assert info.frames == N
    assert info.duration == pytest.approx(N / FPS, abs=0.11)
    assert (info.codec, info.container) == ("h264", "mp4")
    assert info.path == str(media["mp4"])
    assert media_kind(media["mp4"]) == "video"


def test_all_frames_round_trip_pixels(media):
    sample = sample_frames(media["mp4"])
    assert isinstance(sample, FrameSample) and sample.complete and sample.warning is None
    assert [f.index for f in sample.frames] == list(range(N))
    for frame in sample.frames:
        assert isinstance(frame, Frame)
        assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
        assert frame.image.flags.c_contiguous
        assert frame.t == pytest.approx(frame.index / FPS)
        # Lossy, but channels in RGB order and the right frame: red ramps left->right, blue = time.
        assert mean_abs_diff(frame.image, gradient(frame.index)) < 6
    red = sample.frames[0].image[H // 2, :, 0].astype(int)
    assert red[-1] - red[0] > 200


def test_sample_n_evenly_spaced(media):
    sample = sample_frames(media["mp4"], n=5)
    assert [f.index for f in sample.frames] == [0, 5, 10, 14, 19]  # linspace(0, 19, 5), rounded
    assert [f.t for f in sample.frames] == pytest.approx([0.0, 0.5, 1.0, 1.4, 1.9])
    assert sample.complete
    assert [f.index for f in sample_frames(media["mp4"], n=50).frames] == list(range(N))
    assert len(sample_frames(media["mp4"], n=8, max_frames=3).frames) == 3


def test_sample_every_k_and_cap(media):
    assert [f.index for f in sample_frames(media["mp4"], every=3).frames] == [0, 3, 6, 9, 12, 15, 18]
    capped = sample_frames(media["mp4"], every=2, max_frames=4)
    assert [f.index for f in capped.frames] == [0, 2, 4, 6] and capped.complete
    assert len(sample_frames(media["mp4"], max_frames=7).frames) == 7
    with pytest.raises(ValueError):
        sample_frames(media["mp4"], n=3, every=2)
    with pytest.raises(ValueError):
        sample_frames(media["mp4"], every=0)


@pytest.mark.parametrize("key", ["gop_mp4", "ts"])
def test_seeking_returns_same_frames_as_full_decode(media, key):
    path = media[key]
    full = {f.index: f.image for f in sample_frames(path).frames}
    assert sorted(full) == list(range(120))
    with open_video(path) as source:
        if key == "gop_mp4":                       # the MP4 index shows keyframes ~10 apart: seek
            interval = keyframe_interval(source.stream)
            assert 1 < interval <= 10
            assert choose_strategy(source.info.frames, 4, interval, source.clock.has_timestamps) == SEEK
        seeked = sample_video(source, n=4, strategy=SEEK)    # forced: one seek per target
    with open_video(path) as source:
        scanned = sample_video(source, n=4, strategy=SCAN)
    expected = [0, 40, 79, 119]
    assert [f.index for f in seeked.frames] == [f.index for f in scanned.frames] == expected
    assert seeked.complete and scanned.complete
    for frame in seeked.frames:
        assert mean_abs_diff(frame.image, full[frame.index]) < 1.0
        assert frame.t == pytest.approx(frame.index / FPS)
    # The public call (seeking for the MP4, a forward pass for the index-less TS) agrees too.
    public = sample_frames(path, n=4)
    assert [f.index for f in public.frames] == expected


def test_short_targets_do_not_seek():
    assert choose_strategy(20, 5, None, True) == SCAN          # 4 frames apart, GOP unknown
    assert choose_strategy(3000, 8, 50, True) == SEEK
    assert choose_strategy(3000, 8, 50, False) == SCAN          # no timestamps: cannot seek


def test_xvid_avi_decodes(media):
    info = probe(media["xvid"])
    assert (info.codec, info.container, info.frames) == ("mpeg4", "avi", N)
    sample = sample_frames(media["xvid"], n=4)
    assert [f.index for f in sample.frames] == [0, 6, 13, 19]
    assert all(mean_abs_diff(f.image, gradient(f.index)) < 10 for f in sample.frames)


def test_rotation_metadata_is_applied(media):
    info = probe(media["rotated"])
    # Display matrix "90 counter-clockwise" == 270 clockwise (OpenCV and the legacy 'rotate' tag agree).
    assert info.rotation == 270
    assert (info.width, info.height) == (H, W)
    frame = sample_frames(media["rotated"], n=1).frames[0]
    assert frame.image.shape == (W, H, 3) and frame.image.flags.c_contiguous
    assert mean_abs_diff(frame.image, np.rot90(gradient(0))) < 6
    # Independent check: OpenCV's FFmpeg backend auto-rotates the same file.
    cap = cv2.VideoCapture(str(media["rotated"]))
    ok, bgr = cap.read()
    assert ok and cap.get(cv2.CAP_PROP_ORIENTATION_META) == 270
    cap.release()
    assert mean_abs_diff(frame.image, bgr[..., ::-1]) < 3


def test_iter_frames_streams_and_reports(media):
    it = iter_frames(media["mp4"], every=4)
    assert it.info.frames == N and it.complete is None
    indices = [f.index for f in it]
    assert indices == [0, 4, 8, 12, 16] and it.complete is True and it.warning is None
    with iter_frames(media["mp4"]) as early:  # stopping early releases the file
        assert next(early).index == 0


# --- images -------------------------------------------------------------------------------------

def test_image_exif_rotation(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = (255, 0, 0)                     # red marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6                                 # "rotate 90 degrees clockwise to display"
    path = tmp_path / "photo.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.shape == (40, 20, 3) and image.dtype == np.uint8 and image.flags.c_contiguous
    assert image[1, -2, 0] > 200 and image[1, -2, 1] < 60  # marker now top-right
    assert image[-2, 1].max() < 60
    info = probe(path)
    assert (info.kind, info.width, info.height, info.rotation, info.codec) == ("image", 20, 40, 90, "jpeg")
    assert media_kind(path) == "image"


def test_image_modes_become_rgb_uint8(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:8, :, 3] = 255                             # top half opaque, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert out.shape == (16, 16, 3)
    assert tuple(out[0, 0]) == (10, 200, 30) and tuple(out[-1, -1]) == (255, 255, 255)

    gray = (np.arange(16 * 20).reshape(16, 20) % 256).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    out = load_image(tmp_path / "gray.png")
    assert out.shape == (16, 20, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)

    deep = np.full((16, 16), 65535, np.uint16)
    deep[:, :8] = 32896                              # 128 * 257
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = load_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out[0, 0, 0] == 128 and out[0, -1, 0] == 255

    sample = sample_frames(tmp_path / "gray.png", n=8)
    assert len(sample.frames) == 1 and sample.frames[0].index == 0 and sample.frames[0].t == 0.0
    assert sample.complete and sample.info.kind == "image"
    assert [f.index for f in iter_frames(tmp_path / "gray.png")] == [0]


# --- writing ------------------------------------------------------------------------------------

def test_odd_size_is_padded_to_even(tmp_path):
    frames = [gradient(i, w=65, h=49) for i in range(3)]
    path = write_video(tmp_path / "odd.mp4", frames, fps=12.5, crf=18, preset="ultrafast")
    info = probe(path)
    assert (info.width, info.height, info.frames) == (66, 50, 3)
    assert info.fps == pytest.approx(12.5)
    decoded = sample_frames(path).frames[1].image
    assert mean_abs_diff(decoded[:49, :65], frames[1]) < 6


def test_video_writer_is_atomic(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(target, fps=FPS, preset="ultrafast") as writer:
            for i in range(5):
                writer.write(gradient(i))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []            # neither the target nor a temp file

    target.write_bytes(b"previous good file")
    with pytest.raises(RuntimeError):
        with VideoWriter(target, fps=FPS, preset="ultrafast") as writer:
            writer.write(gradient(0))
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]

    with VideoWriter(target, fps=FPS, preset="ultrafast") as writer:
        for i in range(4):
            writer.write(gradient(i))
    assert probe(target).frames == 4


def test_write_video_rejects_empty_and_bad_frames(tmp_path):
    with pytest.raises(MediaError) as err:
        write_video(tmp_path / "empty.mp4", [], fps=FPS)
    assert "no frames" in err.value.reason and str(tmp_path / "empty.mp4") in str(err.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        write_video(tmp_path / "bad.mp4", [np.zeros((16, 16), np.uint8)], fps=FPS)
    with pytest.raises(ValueError):
        write_video(tmp_path / "mixed.mp4", [gradient(0), gradient(1, w=32, h=32)], fps=FPS)
    assert list(tmp_path.iterdir()) == []


# --- bad input ----------------------------------------------------------------------------------

def _make_bad(kind: str, d: Path, good_mp4: Path) -> Path:
    if kind == "empty":
        (d / "empty.mp4").write_bytes(b"")
        return d / "empty.mp4"
    if kind == "truncated_after_header":
        data = good_mp4.read_bytes()
        (d / "cut.mp4").write_bytes(data[:mp4_header_end(data)])
        return d / "cut.mp4"
    if kind == "random_bytes":
        (d / "random.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return d / "random.mp4"
    if kind == "text_named_mp4":
        (d / "notes.mp4").write_text("this is not a video\n" * 40)
        return d / "notes.mp4"
    if kind == "zero_frames":
        container = av.open(str(d / "zero.avi"), "w")
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
        container.close()
        return d / "zero.avi"
    if kind == "audio_only":
        container = av.open(str(d / "voice.m4a"), "w")
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        container.close()
        return d / "voice.m4a"
    if kind == "one_pixel_image":
        Image.new("RGB", (1, 1), (255, 0, 0)).save(d / "pixel.png")
        return d / "pixel.png"
    if kind == "missing":
        return d / "does_not_exist.mp4"
    if kind == "directory":
        (d / "folder.mp4").mkdir()
        return d / "folder.mp4"
    raise KeyError(kind)


BAD_INPUTS = {
    "empty": "file is empty (0 bytes)",
    "truncated_after_header": "truncated or corrupt: header lists 20 frames but none could be decoded",
    "random_bytes": "not a video or image (unrecognised content)",
    "text_named_mp4": "not a video or image (unrecognised content)",
    "zero_frames": "video has no decodable frames",
    "audio_only": "no video stream (audio only)",
    "one_pixel_image": "image too small (1x1; minimum 16x16)",
    "missing": "file not found",
    "directory": "is a directory",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_raises_one_line_media_error(kind, tmp_path, media):
    path = _make_bad(kind, tmp_path, media["mp4"])
    readers = [probe, sample_frames, lambda p: sample_frames(p, n=3), iter_frames]
    if kind not in ("truncated_after_header", "zero_frames", "one_pixel_image"):
        readers.append(media_kind)                   # reads headers only: content problems surface later
    for read in readers:
        with pytest.raises(MediaError) as err:
            read(path)
        message = str(err.value)
        assert message == f"{path}: {err.value.reason}"
        assert "\n" not in message and str(path) in message
        assert err.value.reason.startswith(BAD_INPUTS[kind]), message
    clone = pickle.loads(pickle.dumps(err.value))    # survives data-loader worker processes
    assert (clone.path, clone.reason, str(clone)) == (err.value.path, err.value.reason, str(err.value))


def test_content_decides_not_extension(tmp_path, media):
    png_as_mp4 = tmp_path / "actually_png.mp4"
    Image.fromarray(gradient(0)).save(png_as_mp4, format="PNG")
    assert media_kind(png_as_mp4) == "image"
    sample = sample_frames(png_as_mp4, n=4)
    assert sample.info.kind == "image" and len(sample.frames) == 1
    assert np.array_equal(sample.frames[0].image, gradient(0))

    mp4_as_jpg = tmp_path / "actually_video.jpg"
    mp4_as_jpg.write_bytes(media["mp4"].read_bytes())
    assert media_kind(mp4_as_jpg) == "video"
    assert probe(mp4_as_jpg).frames == N
    assert len(sample_frames(mp4_as_jpg).frames) == N
    with pytest.raises(MediaError, match="not an image"):
        load_image(mp4_as_jpg)


# --- damaged mid-file ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def damaged(media, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("damaged")
    long_mp4 = write_video(d / "long.mp4", (gradient(i) for i in range(60)), fps=FPS, preset="ultrafast")
    data = long_mp4.read_bytes()
    (d / "cut60.mp4").write_bytes(data[:int(len(data) * 0.6)])
    return {"overwritten_mp4": overwrite_middle(long_mp4, d / "mid.mp4"),
            "overwritten_ts": overwrite_middle(media["ts"], d / "mid.ts"),
            "cut_at_60pct": d / "cut60.mp4"}


@pytest.mark.parametrize("key", ["overwritten_mp4", "overwritten_ts", "cut_at_60pct"])
def test_mid_file_damage_yields_frames_and_warning(damaged, key):
    path = damaged[key]
    total = probe(path).frames
    sample = sample_frames(path)
    assert 0 < len(sample.frames) < total
    assert sample.complete is False
    assert sample.warning and "\n" not in sample.warning and sample.warning.startswith("truncated or corrupt")
    indices = [f.index for f in sample.frames]
    assert indices == sorted(set(indices)) and indices[0] == 0
    assert all(mean_abs_diff(f.image, gradient(f.index)) < 25 for f in sample.frames[:5])

    # N spread frames: whatever is returned is what a full decode gives at those indices. (A target
    # landing in or after the damage makes the sample incomplete; damage between targets may not.)
    spread = sample_frames(path, n=6)
    by_index = {f.index: f.image for f in sample.frames}
    assert spread.frames and all(np.array_equal(f.image, by_index[f.index]) for f in spread.frames)
    if key != "overwritten_ts":
        assert spread.complete is False and spread.warning

    stream = iter_frames(path)
    assert len(list(stream)) == len(sample.frames) and stream.complete is False and stream.warning


def test_ffmpeg_stays_quiet_and_log_level_is_restored(damaged, capfd):
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        sample = sample_frames(damaged["overwritten_mp4"])
        assert not sample.complete
        assert av.logging.get_level() == av.logging.VERBOSE
    finally:
        av.logging.set_level(previous)
    captured = capfd.readouterr()
    assert captured.err == ""


# ---------------------------------------------------------------------- hostile sizes and tags

@pytest.mark.parametrize("fmt,ext,codec", [("mp4", "mp4", "libx264"), ("matroska", "mkv", "libx264"),
                                           ("avi", "avi", "mpeg4")])
def test_a_title_tag_that_is_not_utf8_does_not_stop_the_video(tmp_path, fmt, ext, codec):
    """A Latin-1 `caf\\xe9` title must not turn a valid video into 'truncated or corrupt' (a fake could dodge its
    verdict with one byte)."""
    path = tmp_path / f"latin1.{ext}"
    container = av.open(str(path), "w", format=fmt, metadata_encoding="latin-1")
    container.metadata["title"] = "caf\xe9"
    stream = container.add_stream(codec, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    for i in range(6):
        container.mux(stream.encode(av.VideoFrame.from_ndarray(gradient(i), format="rgb24")))
    container.mux(stream.encode(None))
    container.close()
    assert b"caf\xe9" in path.read_bytes()
    with pytest.raises(UnicodeDecodeError):            # what a strict reader does with it
        av.open(str(path)).close()
    sample = sample_frames(path, 4)
    assert len(sample.frames) == 4 and sample.complete and sample.frames[0].image.shape == (H, W, 3)


def test_frames_above_the_pixel_cap_are_kept_downscaled(tmp_path, monkeypatch):
    """Frames larger than MAX_FRAME_PIXELS come back scaled down (aspect kept), for videos and images, and the
    info says the stored size; the limit is lowered here so that the test files stay small."""
    monkeypatch.setattr("forensics.media.types.MAX_FRAME_PIXELS", 32 * 24)
    video = write_video(tmp_path / "big.mp4", [gradient(i) for i in range(N)], fps=FPS)
    sample = sample_frames(video, 5)
    assert {f.image.shape for f in sample.frames} == {(24, 32, 3)}
    assert (sample.info.width, sample.info.height, sample.info.stored_size) == (32, 24, (W, H))
    # The content survives the scaling: the red ramp still runs left to right.
    row = sample.frames[0].image[20, :, 0].astype(int)
    assert row[-1] - row[0] > 200
    Image.fromarray(gradient(0)).save(tmp_path / "big.png")
    image = sample_frames(tmp_path / "big.png")
    assert image.frames[0].image.shape == (24, 32, 3) and image.info.stored_size == (W, H)
    small = sample_frames(write_video(tmp_path / "small.mp4", [gradient(i)[:20, :24] for i in range(3)], fps=FPS))
    assert small.info.stored_size is None and small.frames[0].image.shape == (20, 24, 3)


def test_videos_above_the_hard_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr("forensics.media.video.MAX_VIDEO_PIXELS", 48 * 32)
    video = write_video(tmp_path / "huge.mp4", [gradient(i) for i in range(3)], fps=FPS)
    with pytest.raises(MediaError) as info:
        sample_frames(video, 2)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(video)) and f"{W}x{H}" in message and "limit" in message


def test_animated_images_warn_and_heif_is_refused_by_name(tmp_path):
    frames = [Image.fromarray(gradient(i)) for i in range(5)]
    for ext in ("gif", "webp"):
        path = tmp_path / f"animated.{ext}"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
        sample = sample_frames(path)
        assert len(sample.frames) == 1 and sample.complete and sample.info.frames == 5
        assert sample.warning.startswith("animated image: only the first of its 5 frames")
    still = tmp_path / "still.gif"
    frames[0].save(still)
    assert sample_frames(still).warning is None
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    with pytest.raises(MediaError) as info:
        sample_frames(heic)
    assert "HEIF/AVIF images are not supported" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------- variable frame rate

def encode_with_pause(path: Path, fmt: str, before: int = 30, after: int = 30, pause_s: float = 5.0) -> Path:
    """A variable-frame-rate clip as a phone or screen recorder writes it: frames every 1/FPS s, then one frame
    held for `pause_s` seconds, then frames every 1/FPS s again (millisecond timestamps)."""
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "20"}
    stream.codec_context.time_base = Fraction(1, 1000)
    t_ms = 0
    for i in range(before + after):
        frame = av.VideoFrame.from_ndarray(gradient(i), format="rgb24")
        frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
        container.mux(stream.encode(frame))
        t_ms += int(pause_s * 1000) if i == before - 1 else 1000 // FPS
    container.mux(stream.encode(None))
    container.close()
    return path


@pytest.mark.parametrize("fmt,ext", [("mp4", "mp4"), ("matroska", "mkv"), ("mpegts", "ts")])
def test_a_pause_in_variable_frame_rate_video_is_not_corruption(tmp_path, fmt, ext):
    """Timestamps that jump over a pause are how variable-frame-rate video is made, not lost frames: no
    "truncated or corrupt" warning, and frames are sampled from both sides of the pause (by time), whether
    the container lists its frame count (MP4) or the count is estimated from the duration (MKV, TS)."""
    path = encode_with_pause(tmp_path / f"pause.{ext}", fmt)
    samples = [sample_frames(path, 12)]
    for strategy in (SEEK, SCAN):
        with open_video(path) as source:
            samples.append(sample_video(source, n=12, strategy=strategy))
    for sample in samples:
        assert sample.complete and sample.warning is None, sample.warning
        times = [f.t for f in sample.frames]
        assert times == sorted(times) and min(times) < 1.0 and max(times) > 7.0
        assert sum(t > 7.0 for t in times) >= 3       # the part after the pause is sampled, not one frame of it
        blues = {int(f.image[..., 2].mean()) for f in sample.frames}
        assert len(blues) == len(sample.frames)        # distinct frames, none repeated
    every = sample_frames(path, every=1)
    assert every.complete and every.warning is None and len(every.frames) == 60
    stream = iter_frames(path)
    assert len(list(stream)) == 60 and stream.complete and stream.warning is None
