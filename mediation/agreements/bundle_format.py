"""The evidence bundle's fixed names (pure: no database), shared by its assembly (`bundle`) and the offline
verifier (`verify`). The layout is documented in docs/bundle.md; the container is `zipfmt`."""

from __future__ import annotations

FORMAT = "onedoor-evidence-bundle/1"
MANIFEST, MANIFEST_SIG = "manifest.json", "manifest.sig"


def subject_matches(subject: str, prefixes: list[str]) -> bool:
    """Whether an audit subject is one of `prefixes` or below one ("case:X" covers "case:X/agreement:1")."""
    return any(subject == p or subject.startswith(p + "/") for p in prefixes)
