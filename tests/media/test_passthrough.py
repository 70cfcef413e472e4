import av
import pytest

from media import fixtures, passthrough

pytestmark = pytest.mark.timeout(30)


def test_aiortc_internals_match_the_pinned_version():
    # Fails loudly (AiortcInternalsChanged listing what moved) if aiortc is upgraded or patched.
    passthrough.check_aiortc_internals.cache_clear()
    passthrough.check_aiortc_internals()


def test_bot_clips_are_real_vp8_and_opus_with_regular_keyframes():
    video = fixtures.video_clip()
    assert video.keyframes == (0, 60)
    assert all(passthrough.is_vp8_keyframe(video.frames[i]) == (i in video.keyframes) for i in range(120))
    assert 600_000 < video.bitrate < 1_000_000
    decoder = av.CodecContext.create("vp8", "r")
    frames = [f for data in video.frames[:3] for f in decoder.decode(av.Packet(data))]
    assert [(f.width, f.height) for f in frames] == [(640, 480)] * 3
    audio = fixtures.audio_clip()
    opus = av.CodecContext.create("opus", "r")
    decoded = [f for data in audio.frames[:5] for f in opus.decode(av.Packet(data))]
    assert len(audio.frames) == 50 and sum(f.samples for f in decoded) == 5 * 960


def test_clip_cache_round_trips_through_the_file(tmp_path):
    fixtures._memory.clear()
    first = fixtures.audio_clip(cache_dir=tmp_path)
    fixtures._memory.clear()
    assert fixtures.audio_clip(cache_dir=tmp_path) == first
    assert len(list(tmp_path.iterdir())) == 1
