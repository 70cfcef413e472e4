"""Recorded sources: a participant's camera and microphone are one source (its id is the participant's), and a
screen the participant shares is a source of its own, `<participant>.screen` (video only), so the recording keeps
it as separate streams (`<participant>.screen.<part>`) that the export shows as their own tile."""

from __future__ import annotations

SCREEN_SUFFIX = ".screen"
SCREEN_LABEL = "屏幕 screen"


def screen_source(participant: str) -> str:
    return participant + SCREEN_SUFFIX


def screen_owner(source_id: str) -> str | None:
    """The participant whose shared screen `source_id` is; None for a person's own source."""
    if source_id.endswith(SCREEN_SUFFIX) and len(source_id) > len(SCREEN_SUFFIX):
        return source_id[: -len(SCREEN_SUFFIX)]
    return None


def source_label(labels: dict[str, str], source_id: str) -> str:
    """A source's title in exports: the person's label, or "<person's label> · 屏幕 screen" for a shared screen."""
    owner = screen_owner(source_id)
    if source_id in labels or owner is None:
        return labels.get(source_id, source_id)
    return f"{labels.get(owner, owner)} · {SCREEN_LABEL}"
