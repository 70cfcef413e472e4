"""The browser app (static ES modules). This file only lets the server find the directory when installed."""

from pathlib import Path

WEB_DIR = Path(__file__).parent
