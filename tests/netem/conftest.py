"""The headless Chromium the media tests use (tests/media/conftest.py), for the weak-link test with browser
publishers."""

from tests.media.conftest import browser  # noqa: F401 (a fixture)
