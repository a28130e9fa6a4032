"""Storage of transcripts and jobs (sync SQLAlchemy; callers run it in a thread)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from nemo_server.common.db import Database
from nemo_server.transcription.engines.base import Segment, Word
from nemo_server.transcription.models import Job, JobAudio, Transcript, TranscriptSegment

ACTIVE = ("queued", "running", "waiting_gpu")


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class TranscriptRecord:
    transcript: Transcript
    segments: list[Segment]


def _segment_row(transcript_id: str, idx: int, s: Segment) -> TranscriptSegment:
    return TranscriptSegment(
        transcript_id=transcript_id,
        idx=idx,
        start=s.start,
        end=s.end,
        text=s.text,
        speaker=s.speaker,
        words=[[w.start, w.end, w.word, w.probability, w.speaker] for w in s.words],
    )


def _segment(row: TranscriptSegment) -> Segment:
    return Segment(
        start=row.start,
        end=row.end,
        text=row.text,
        speaker=row.speaker,
        words=[
            Word(float(a), float(b), str(t), float(p), sp) for a, b, t, p, sp in row.words or []
        ],
    )


class TranscriptStore:
    """Transcripts and jobs of every user; every call takes the owner's user id."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # transcripts -------------------------------------------------------------------------
    def create_transcript(self, user_id: str, **fields: Any) -> Transcript:
        row = Transcript(id=new_id("tr"), user_id=user_id, created_at=now(), **fields)
        with self.db.session() as s:
            s.add(row)
        return row

    def save_transcript(self, user_id: str, segments: list[Segment], **fields: Any) -> Transcript:
        row = Transcript(id=new_id("tr"), user_id=user_id, created_at=now(), **fields)
        with self.db.session() as s:
            s.add(row)
            s.flush()
            s.add_all(_segment_row(row.id, i, seg) for i, seg in enumerate(segments))
        return row

    def get_transcript(self, user_id: str, transcript_id: str) -> TranscriptRecord | None:
        with self.db.session() as s:
            row = s.get(Transcript, transcript_id)
            if row is None or row.user_id != user_id:
                return None
            rows = s.scalars(
                select(TranscriptSegment)
                .where(TranscriptSegment.transcript_id == transcript_id)
                .order_by(TranscriptSegment.idx)
            ).all()
            return TranscriptRecord(row, [_segment(r) for r in rows])

    def list_transcripts(self, user_id: str, limit: int, offset: int) -> list[Transcript]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(Transcript)
                    .where(Transcript.user_id == user_id)
                    .order_by(Transcript.created_at.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )

    def delete_transcript(self, user_id: str, transcript_id: str) -> bool:
        with self.db.session() as s:
            row = s.get(Transcript, transcript_id)
            if row is None or row.user_id != user_id:
                return False
            jobs = select(Job.id).where(Job.transcript_id == transcript_id)
            s.execute(delete(JobAudio).where(JobAudio.job_id.in_(jobs)))
            s.execute(delete(Job).where(Job.transcript_id == transcript_id))
            s.execute(
                delete(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript_id)
            )
            s.delete(row)
            return True

    def replace_segments(self, transcript_id: str, segments: list[Segment], **fields: Any) -> None:
        """Rewrite all segments at once (after a job's final diarization pass)."""
        with self.db.session() as s:
            s.execute(
                delete(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript_id)
            )
            s.add_all(_segment_row(transcript_id, i, seg) for i, seg in enumerate(segments))
            if fields:
                s.execute(update(Transcript).where(Transcript.id == transcript_id).values(**fields))

    # jobs --------------------------------------------------------------------------------
    def create_job(
        self,
        user_id: str,
        transcript_id: str,
        duration_s: float,
        options: dict,
        owner: str | None = None,
        claim_s: float = 60.0,
    ) -> Job:
        stamp = now()
        row = Job(
            id=new_id("job"),
            user_id=user_id,
            transcript_id=transcript_id,
            status="queued",
            created_at=stamp,
            updated_at=stamp,
            options=options,
            duration_s=duration_s,
            processed_s=0.0,
            next_idx=0,
            chunks_done=0,
            preemptions=0,
            owner=owner,
            claimed_until=stamp + timedelta(seconds=claim_s) if owner else None,
        )
        with self.db.session() as s:
            s.add(row)
        return row

    def claim(self, job_id: str, owner: str, claim_s: float) -> bool:
        """Take an active job unless another live process holds it; True when it is ours."""
        stamp = now()
        with self.db.session() as s:
            taken = s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.status.in_(ACTIVE),
                    or_(Job.owner.is_(None), Job.owner == owner, Job.claimed_until < stamp),
                )
                .values(owner=owner, claimed_until=stamp + timedelta(seconds=claim_s))
            ).rowcount
        return bool(taken)

    def renew(self, owner: str, job_ids: list[str], claim_s: float) -> None:
        if not job_ids:
            return
        with self.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.owner == owner, Job.id.in_(job_ids))
                .values(claimed_until=now() + timedelta(seconds=claim_s))
            )

    def release_claims(self, owner: str) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.owner == owner).values(owner=None, claimed_until=None))

    def get_job(self, job_id: str, user_id: str | None = None) -> Job | None:
        with self.db.session() as s:
            row = s.get(Job, job_id)
            if row is None or (user_id is not None and row.user_id != user_id):
                return None
            return row

    def list_jobs(self, user_id: str, status: str | None, limit: int, offset: int) -> list[Job]:
        query = select(Job).where(Job.user_id == user_id)
        if status:
            query = query.where(Job.status == status)
        with self.db.session() as s:
            return list(
                s.scalars(query.order_by(Job.created_at.desc()).limit(limit).offset(offset))
            )

    def active_jobs(self) -> list[Job]:
        with self.db.session() as s:
            return list(
                s.scalars(select(Job).where(Job.status.in_(ACTIVE)).order_by(Job.created_at))
            )

    def set_job(self, job_id: str, **fields: Any) -> None:
        statement = update(Job).where(Job.id == job_id)
        if fields.get("status") not in (None, "cancelled"):
            # The runner never flips a job the user cancelled meanwhile back to running.
            statement = statement.where(Job.status != "cancelled")
        with self.db.session() as s:
            s.execute(statement.values(updated_at=now(), **fields))

    def checkpoint(
        self,
        job: Job,
        segments: list[Segment],
        processed_s: float,
        expected_idx: int,
        language: str | None = None,
    ) -> bool:
        """Save one chunk's segments and move the checkpoint, atomically.

        `expected_idx` guards against a chunk saved twice: the write only happens when the
        job's `next_idx` is still what the chunk started from. False if it was not saved.
        """
        with self.db.session() as s:
            moved = s.execute(
                update(Job)
                .where(Job.id == job.id, Job.next_idx == expected_idx, Job.status != "cancelled")
                .values(
                    next_idx=expected_idx + len(segments),
                    processed_s=processed_s,
                    chunks_done=Job.chunks_done + 1,
                    updated_at=now(),
                )
            ).rowcount
            if not moved:
                return False
            s.add_all(
                _segment_row(job.transcript_id, expected_idx + i, seg)
                for i, seg in enumerate(segments)
            )
            if language:
                s.execute(
                    update(Transcript)
                    .where(Transcript.id == job.transcript_id, Transcript.language.is_(None))
                    .values(language=language)
                )
            return True

    def complete_job(self, job: Job) -> None:
        with self.db.session() as s:
            s.execute(
                update(Transcript).where(Transcript.id == job.transcript_id).values(complete=True)
            )
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.status != "cancelled")
                .values(status="completed", processed_s=job.duration_s, updated_at=now())
            )

    def segment_count(self, transcript_id: str) -> int:
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(TranscriptSegment)
                    .where(TranscriptSegment.transcript_id == transcript_id)
                )
                or 0
            )
