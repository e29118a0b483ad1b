"""The build/version lifecycle of a reindex job: open or resume a build, discard stale ones, finish and switch.

A *build* is a text-index version being written aside (not live) plus, per part (shard) of the
job, a journal `<index_dir>/builds/<version>/journal-IofN.jsonl` (stages.journal_path). The
journal's header holds the job's key (inputs, model version, target); a later run with the same
key resumes the build, one with other inputs discards it. When a part finishes it records itself
with the text backend (`record_part`, kept with the index, so workers on other machines see it);
the worker that records the last part publishes the vectors and switches the text index, the one
atomic step that makes text and vectors live together.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.documents import SCHEMA_VERSION
from indexer.errors import IndexerError
from indexer.text.base import TextBackend, check_version_name, new_version_name
from pipelines.reindex.config import ReindexConfig, ReindexSummary
from pipelines.reindex.stages import Journal, ReindexError, build_dir, file_digest, journal_path, journals_of_part

if TYPE_CHECKING:
    from pipelines.reindex.vectors import VectorWriter


class BuildLifecycle:
    """The versions one part of a reindex job builds into, from opening to the switch.

    Args:
        config: the job's configuration (index dir, shard, --build, --fresh, --keep-previous).
        backend: the open text backend the build is written to.
        vectors: the job's vector writer, or None for a text-only job.
        model_version: the annotator's model version (part of the job's key), or None.
    """

    def __init__(self, config: ReindexConfig, backend: TextBackend, vectors: VectorWriter | None,
                 model_version: str | None):
        self.config = config
        self.backend = backend
        self.vectors = vectors
        self.model_version = model_version

    def journal(self, version: str) -> Journal:
        """This part's journal of `version`."""
        return Journal(journal_path(self.config.index_dir, version, self.config.shard))

    def job_key(self) -> dict:
        """What must be equal for a build to be resumed: inputs, target, model, part, schema, vectors."""
        c = self.config
        settings = getattr(self.backend, "settings", None)
        target = (str(Path(c.index_dir).resolve()) if self.backend.name == "embedded"
                  else f"{getattr(settings, 'safe_url', '')}#{getattr(settings, 'index', '')}")
        return {"backend": self.backend.name, "target": target, "images": str(Path(c.images).resolve()),
                "manifest": file_digest(c.manifest), "reports": file_digest(c.reports),
                "model_version": self.model_version, "part": c.part, "schema": SCHEMA_VERSION,
                "vectors": getattr(self.vectors, "name", "faiss") if self.vectors is not None else False}

    # --- opening --------------------------------------------------------------------------------------

    def open(self) -> tuple[str, Journal, bool]:
        """Pick the version to build into: resume, join a sharded build, or create one.

        Returns:
            (version, this part's journal, whether the build is resumed).
        """
        key = self.job_key()
        existing = set(self.backend.versions())
        live = self.backend.live_version()
        if self.config.build:
            return self._open_named(check_version_name(self.config.build), key, existing, live)

        resume, stale = self._find_build(key, live, existing)
        sharded = self.config.shard[1] > 1
        for version in stale + ([resume] if resume and self.config.fresh else []):
            # never drop a version other workers may still be writing, nor the live one
            self.discard(version, drop_index=not sharded and version != live and version in existing)
        if resume and not self.config.fresh:
            return resume, self.journal(resume), True
        version = new_version_name()
        journal = self.journal(version)
        journal.start({"key": key, "version": version})  # first: a kill before create leaves no orphan index
        self.backend.create(version)
        return version, journal, False

    def _open_named(self, version: str, key: dict, existing: set[str], live: str | None) -> tuple[str, Journal, bool]:
        """Join (or start) the build `--build NAME` that the N workers of a sharded job share."""
        if version == live:
            raise ReindexError(f"--build {version}: that version is live; name a new build")
        if self.config.fresh and version in existing:
            raise ReindexError(f"--fresh --build {version}: that build exists already (other workers may be "
                               "writing into it); name a new build to start from scratch")
        journal = self.journal(version)
        header = journal.header()
        if version not in existing:
            try:
                self.backend.create(version)
            except IndexerError:
                if version not in self.backend.versions():  # not a race with another worker
                    raise
            header = None  # a journal without its index counts for nothing
        elif header is not None and header.get("key") != key:
            raise ReindexError(f"--build {version} was started with other inputs ({journal.path}); "
                               "name a new build")
        if header is None:
            journal.start({"key": key, "version": version})
            return version, journal, False
        return version, journal, True

    def _find_build(self, key: dict, live: str | None, existing: set[str]) -> tuple[str | None, list[str]]:
        """An unfinished build of this job to resume, and local builds that cannot be resumed.

        A build whose version is live already (another worker switched it) or gone is not resumable;
        neither is one started with other inputs.
        """
        matches, stale = [], []
        for path in journals_of_part(self.config.index_dir, self.config.shard):
            header = Journal(path).header()
            version = path.parent.name
            ok = header is not None and header.get("key") == key and version != live and version in existing
            (matches if ok else stale).append(version)
        return (matches[-1] if matches else None), stale

    def discard(self, version: str, drop_index: bool) -> None:
        """Forget a build: its journals always, its text index and vectors when `drop_index`."""
        if drop_index:
            try:
                self.backend.drop(version)
            except IndexerError:
                pass
            if self.vectors is not None:
                self.vectors.discard(version)  # vectors published by a run killed before its switch
        shutil.rmtree(build_dir(self.config.index_dir, version), ignore_errors=True)

    # --- finishing ------------------------------------------------------------------------------------

    def finish(self, summary: ReindexSummary, version: str, journal: Journal) -> None:
        """Record this part; when every part is in, switch (or keep the live index if nothing changed)."""
        self.backend.refresh(version)
        stats = {"images": summary.images, "indexed": summary.indexed, "unchanged": summary.unchanged,
                 "skipped": summary.n_skipped, "failed": summary.n_failed}
        parts = self.backend.record_part(version, self.config.part, stats)
        summary.parts_done = len(parts)
        if len(parts) < summary.parts_total:
            return
        if summary.parts_total > 1 and not self._claim_finish(version):
            return  # another part saw every part in at the same moment and switches
        live = self.backend.live_version()
        changed = sum(int(p.get("indexed", 0)) for p in parts.values())
        documents = self.backend.count(version)
        summary.documents = documents
        if live is not None and live != version and changed == 0 and documents == self.backend.count(live):
            summary.nothing_changed, summary.live_version = True, live
            self.backend.drop(version)
            if self.vectors is not None:
                self.vectors.discard(version)
        else:
            if self.vectors is not None:  # first the vectors, complete, under the version: not live yet
                summary.vectors = self.vectors.publish(version, sorted(parts))
                summary.vectors_dir = self.vectors.location(version)
                summary.vector_backend = self.vectors.name
            if hasattr(self.backend, "memory_index"):  # embedded: the ranker's snapshot is ready before it goes live
                self.backend.memory_index(version)
            # the atomic step: the text index's live version now names `version`, and with it its vectors
            summary.previous_version = self.backend.switch(version, keep_previous=self.config.keep_previous)
            summary.switched, summary.live_version = True, version
            from indexer.vectors.live import remove_orphans

            remove_orphans(self.config.index_dir, self.backend)  # vectors of versions the switch dropped
        self._release_finish(version)
        shutil.rmtree(journal.path.parent, ignore_errors=True)

    # --- one finisher -----------------------------------------------------------------------------------

    def _claim_finish(self, version: str) -> bool:
        """Elect the one part that publishes and switches, when several see every part in at once.

        The first claim wins and records its part; the same part, rerun after a kill, wins again
        (so a killed finisher is resumed by rerunning its part). Embedded: an exclusive-create file
        in the build's folder (the parts share the index dir); Elasticsearch: a create-only document
        in `<alias>-finish` on the cluster (the parts may be on different machines).
        """
        part = self.config.part
        if self.backend.name == "es":
            return self._claim_on_es(version, part)
        marker = build_dir(self.config.index_dir, version) / "FINISHER"
        marker.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return marker.read_text(encoding="utf-8").strip() in ("", part)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _finish_index(self) -> str:
        return f"{self.backend.settings.index}-finish"

    def _claim_on_es(self, version: str, part: str) -> bool:
        from elasticsearch import ConflictError

        client = self.backend.client
        try:
            client.index(index=self._finish_index(), id=version, document={"part": part}, op_type="create",
                         refresh=True)
            return True
        except ConflictError:
            holder = client.get(index=self._finish_index(), id=version)["_source"].get("part")
            return holder == part

    def _release_finish(self, version: str) -> None:
        if self.backend.name == "es" and self.config.shard[1] > 1:
            try:
                self.backend.client.delete(index=self._finish_index(), id=version, refresh=True)
            except Exception:  # noqa: BLE001 - a leftover claim of a finished build is harmless
                pass
