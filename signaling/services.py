"""What a running server holds: settings, database, keys, identity verifiers, live rooms, and the agreement
notary (seal, TSA, mediator keys) and court directory, both loaded from the key directory on first use."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from mediation import audit
from mediation.accounts import LoginThrottle
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.notary import AgreementSettings, Notary
from mediation.agreements.pki import DevPKI
from mediation.application_files import ApplicationFiles
from mediation.db import Database, private_dir
from mediation.documents import CaseFile
from mediation.identity import AttestationVerifier, IdentityVerifier, OtpVerifier
from mediation.keyring import KeyRing
from mediation.live import LiveSessions
from mediation.speech import RecognizerFactory
from mediation.workflow import Workflow
from recordings.court_share import CourtShare
from recordings.documents_store import CourtDocuments, DocumentStore
from recordings.export_queue import ExportQueue
from recordings.storage import RecordingStorage
from signaling.cluster import ClusterNode
from signaling.config import Settings
from signaling.stores import document_storage, export_storage, recording_storage


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyRing
    verifiers: dict[str, IdentityVerifier]
    challenge_secret: bytes
    live: LiveSessions
    storage: RecordingStorage
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    cluster: ClusterNode | None = None  # this node of several (signaling/cluster.py); None: a single server
    # speech-to-text drafts (mediation.speech): a factory of per-speaker recognizer streams from the operator's
    # engine (`onedoor serve --speech-model DIR`); None: the feature is off, no audio is decoded at all
    speech: RecognizerFactory | None = None
    # export jobs: their encrypted results (any node serves them) and the queue (signaling/exports.py starts it)
    export_store: RecordingStorage | None = None
    exports: ExportQueue | None = None
    _notary: Notary | None = None
    _pki: DevPKI | None = None  # loaded by `prepare_keys` (a worker thread at start-up) for the notary
    _courts: CourtDirectory | None = None

    @property
    def notary(self) -> Notary:
        """Loaded lazily so the agreements' verification links use the base URL known once the server listens."""
        if self._notary is None:
            assert self.settings.key_dir is not None
            self._notary = Notary.load(AgreementSettings(key_dir=self.settings.key_dir,
                                                         base_url=self.settings.public_url), self.keys, self._pki)
        return self._notary

    def prepare_keys(self) -> None:
        """Create the signing keys (seal PKI, court directory) if they are missing: RSA key generation is seconds
        of CPU, so the app runs this in a worker thread at startup, never inside a request (issue 9)."""
        assert self.settings.key_dir is not None
        self._pki = DevPKI.load_or_create(self.settings.key_dir,
                                          AgreementSettings(key_dir=self.settings.key_dir).center_name)
        _ = self.courts

    @property
    def workflow(self) -> Workflow:
        """The agreement workflow facade (mediation.workflow) both transports call."""
        return Workflow(self.db, lambda: self.notary, lambda: self.courts)

    @property
    def court_share(self) -> CourtShare:
        return CourtShare(self.db, self.keys, self.storage, self.courts)

    @property
    def case_file(self) -> CaseFile:
        """The case file's documents (mediation.documents), stored encrypted apart from the recordings."""
        return CaseFile(self.db, DocumentStore(self.keys, document_storage(self.settings)), self.challenge_secret)

    @property
    def application_files(self) -> ApplicationFiles:
        """The court package's documents, taken from the case file (mediation.application_files)."""
        return ApplicationFiles(self.db, self.case_file, lambda: self.notary)

    @property
    def court_documents(self) -> CourtDocuments:
        return CourtDocuments(self.db, DocumentStore(self.keys, document_storage(self.settings)), self.courts)

    @property
    def courts(self) -> CourtDirectory:
        """The court directory: seeded from `<key_dir>/courts/courts.json` (development courts are generated when
        absent) and backed by the courts table (`mediation.tenancy.seed_courts` at start-up)."""
        if self._courts is None:
            assert self.settings.key_dir is not None
            self._courts = CourtDirectory.load_or_create_dev(self.settings.key_dir)
        return self._courts

    @classmethod
    def build(cls, settings: Settings) -> Services:
        private_dir(settings.data_dir)  # 0700: the database, recordings and everything else are the center's alone
        assert settings.key_dir is not None
        keys = KeyRing.load_or_create(settings.key_dir)
        raw = keys.signing_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return cls(
            settings=settings,
            db=Database(settings.db_url, record=audit.append_many),
            keys=keys,
            verifiers={"otp": OtpVerifier(settings.code_sender), "attestation": AttestationVerifier()},
            challenge_secret=hashlib.sha256(b"onedoor-join-challenge:" + raw).digest(),
            live=LiveSessions(),
            storage=recording_storage(settings),
            export_store=export_storage(settings),
        )


SERVICES = web.AppKey("services", Services)
