#!/usr/bin/env bash
# Builds docs/protocol.md and docs/security.md from their parts (one part per layer). Run after editing a part.
set -euo pipefail
cd "$(dirname "$0")"
demote() { sed -e 's/^#/##/' "$1"; }
{ cat protocol-core.md; for part in protocol-media.md protocol-agreements.md protocol-casefile.md; do
    [ -f "$part" ] && { echo; demote "$part"; }; done; } > protocol.md
{ cat security-core.md; for part in security-recordings.md security-casefile.md; do
    [ -f "$part" ] && { echo; demote "$part"; }; done; } > security.md
